/**
 * `idem/agent`: AI agents that can crash and retry safely. Tool calls are guarded (keyed by run,
 * tool and call id, run once), and durable runs record each model turn and tool call as a
 * workflow step. See docs/agent.md.
 */

export {
  type AgentAnswer,
  type AgentInput,
  type AgentRun,
  agentWorkflow,
  type DurableGenerateTextOptions,
  type DurableToolOptions,
  durableGenerateText,
  type TextResultLike,
} from './ai-sdk/agent-workflow.js';
export {
  type DurableModelOptions,
  durableModel,
  type GenerateResultLike,
  type LanguageModelLike,
  type StreamResultLike,
} from './ai-sdk/durable-model.js';
export { type AiToolLike, guardTools, type ToolCallOptionsLike } from './ai-sdk/guard-tools.js';
export {
  type ApprovalDecision,
  approvalSignalName,
  type PendingApproval,
  pendingApprovals,
  type Refusal,
} from './approvals.js';
export {
  currentAgentRun,
  type GuardOptions,
  guardedCall,
  inAgentRun,
  type KeyBy,
  TOOL_NAMESPACE,
  type ToolCall,
  type ToolCallContext,
  ToolGuard,
  toolCallContext,
} from './guard.js';
export { type HandoffRunOptions, handoffRun } from './handoff-run.js';
export {
  guardOpenAIHandoff,
  guardOpenAITool,
  guardOpenAITools,
  type HandoffRecord,
  type InvokableTool,
  isGuardedOpenAIHandoff,
  isGuardedOpenAITool,
  isRecordedModel,
  type OpenAIAgentRunOptions,
  type OpenAISingleToolGuardOptions,
  type OpenAIToolGuardOptions,
  recordedModel,
  recordedModelProvider,
  runOpenAIAgent,
} from './openai/index.js';
export { type GuardedPlainTool, guardTool, type PlainTool } from './plain-tool.js';
