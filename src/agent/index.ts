/**
 * `idem/agent`: AI agents that can crash and retry safely. Tool calls are guarded (keyed by run,
 * tool and call id, run once), and durable runs record each model turn and tool call as a
 * workflow step. See docs/agent.md.
 */
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
