/**
 * Model turns as steps: a `Model` of the OpenAI Agents SDK wrapped so that, inside a durable run
 * (`runOpenAIAgent`), each `getResponse` is the step `model:<n>` of the run. A resumed run gets
 * the recorded answers of its finished turns without asking the model again, so it neither pays
 * for them twice nor sees a different answer. Outside a durable run the wrapper only passes through.
 */

import { AsyncLocalStorage } from 'node:async_hooks';
import type { Model, ModelProvider, ModelRequest, ModelResponse } from '@openai/agents';
import type { StepOptions, WorkflowContext } from '../../workflow/types.js';
import { nextModelTurn } from '../guard.js';

type StreamEvent = Model['getStreamedResponse'] extends (request: ModelRequest) => AsyncIterable<infer E> ? E : never;

/** The durable run the model turns are recorded in, and their step options. */
interface TurnScope {
  readonly ctx: WorkflowContext;
  readonly step: Pick<StepOptions<unknown>, 'retries' | 'timeoutMs' | 'isFinal'>;
}

const scopes = new AsyncLocalStorage<TurnScope>();

/** Runs `fn` with its model turns recorded as steps `model:0`, `model:1`... of `ctx`. */
export function withRecordedTurns<T>(ctx: WorkflowContext, step: TurnScope['step'], fn: () => T): T {
  return scopes.run({ ctx, step }, fn);
}

const RECORDED = Symbol.for('idem.agent.openai.recorded-model');

/** True when `model` records its turns (made by `recordedModel` or `recordedModelProvider`). */
export function isRecordedModel(model: unknown): boolean {
  return typeof model === 'object' && model !== null && (model as { [RECORDED]?: true })[RECORDED] === true;
}

/**
 * Wraps a model so its turns are recorded inside durable runs. Streamed turns are read to their
 * end inside the step and their events given back after it: a durable run does not stream live.
 *
 * @example
 * ```ts
 * import { Agent, OpenAIResponsesModel } from '@openai/agents';
 * import OpenAI from 'openai';
 * import { recordedModel } from 'idem/agent';
 *
 * const agent = new Agent({ name: 'support', model: recordedModel(new OpenAIResponsesModel(new OpenAI(), 'gpt-5-mini')) });
 * ```
 */
export function recordedModel(model: Model): Model {
  if (isRecordedModel(model)) return model;
  return {
    [RECORDED]: true,
    async getResponse(request: ModelRequest): Promise<ModelResponse> {
      const scope = scopes.getStore();
      if (scope === undefined) return model.getResponse(request);
      const turn = nextModelTurn(scope.ctx);
      return scope.ctx.step(`model:${turn}`, async () => plain(await model.getResponse(request)), {
        retries: { maxAttempts: 1 },
        ...scope.step,
      });
    },
    async *getStreamedResponse(request: ModelRequest): AsyncIterable<StreamEvent> {
      const scope = scopes.getStore();
      if (scope === undefined) {
        yield* model.getStreamedResponse(request);
        return;
      }
      const turn = nextModelTurn(scope.ctx);
      const events = await scope.ctx.step(
        `model:${turn}`,
        async () => {
          const all: StreamEvent[] = [];
          for await (const event of model.getStreamedResponse(request)) all.push(event);
          return plain(all);
        },
        { retries: { maxAttempts: 1 }, ...scope.step },
      );
      yield* events;
    },
    ...(model.getRetryAdvice === undefined ? {} : { getRetryAdvice: model.getRetryAdvice.bind(model) }),
  } as Model;
}

/**
 * Wraps a model provider (what the runner asks for the models agents name by a string) so that
 * every model it gives records its turns.
 *
 * @example
 * ```ts
 * import { OpenAIProvider } from '@openai/agents';
 * import { recordedModelProvider } from 'idem/agent';
 *
 * const modelProvider = recordedModelProvider(new OpenAIProvider());
 * ```
 */
export function recordedModelProvider(provider: ModelProvider): ModelProvider {
  return {
    async getModel(name?: string): Promise<Model> {
      return recordedModel(await provider.getModel(name));
    },
  };
}

/**
 * The response as plain JSON data, which is what a step records: `usage` is a class of the SDK,
 * and the runner reads only its fields (`Usage.add`), so its fields are enough on replay.
 */
function plain<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
