export { guardOpenAIHandoff, type HandoffRecord, isGuardedOpenAIHandoff } from './handoff.js';
export { isRecordedModel, recordedModel, recordedModelProvider } from './model.js';
export { type OpenAIAgentRunOptions, runOpenAIAgent } from './run.js';
export {
  guardOpenAITool,
  guardOpenAITools,
  type InvokableTool,
  isGuardedOpenAITool,
  type OpenAISingleToolGuardOptions,
  type OpenAIToolGuardOptions,
} from './tools.js';
