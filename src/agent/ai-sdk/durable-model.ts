/**
 * A language model (AI SDK `LanguageModelV3`) whose calls are steps of a workflow run: each
 * `doGenerate` / `doStream` is `ctx.step('model:<n>')`, so a resumed run gets a finished turn's
 * answer from the journal and does not send it to the model again. Works on the model's shape
 * only: `ai` is not imported.
 */

import type { StepOptions, WorkflowContext } from '../../workflow/types.js';
import { nextModelTurn } from '../guard.js';

/** The result of `doGenerate`, as far as Idem records it. */
export interface GenerateResultLike {
  content: unknown[];
  finishReason: unknown;
  usage: unknown;
  warnings: unknown[];
  providerMetadata?: unknown;
  request?: unknown;
  response?: { id?: string | undefined; modelId?: string | undefined; timestamp?: Date | undefined };
}

/** The result of `doStream`. */
export interface StreamResultLike {
  stream: ReadableStream<unknown>;
  request?: unknown;
  response?: unknown;
}

/** An AI SDK language model (specification v3) as Idem sees it. */
export interface LanguageModelLike {
  readonly specificationVersion: 'v3';
  readonly provider: string;
  readonly modelId: string;
  readonly supportedUrls: unknown;
  doGenerate(options: unknown): PromiseLike<GenerateResultLike>;
  doStream(options: unknown): PromiseLike<StreamResultLike>;
}

/** Options of the model's steps. */
export interface DurableModelOptions {
  /**
   * How a failed model call is retried, as a step (recorded, so retries and their pauses go on
   * across crashes). Default: 3 attempts. Pass `maxRetries: 0` to `generateText` so the SDK does
   * not retry on its own as well (`durableGenerateText` does).
   */
  step?: Pick<StepOptions<unknown>, 'retries' | 'timeoutMs' | 'isFinal'>;
}

/** What is kept of a generate result: the answer, without the raw HTTP request and response bodies and headers. */
function recordable(result: GenerateResultLike): GenerateResultLike {
  const { request: _request, response, ...answer } = result;
  if (response === undefined) return answer;
  return { ...answer, response: { id: response.id, modelId: response.modelId, timestamp: response.timestamp } };
}

/** A stream that gives `parts`, then ends. */
function streamOf(parts: unknown[]): ReadableStream<unknown> {
  return new ReadableStream({
    start(controller) {
      for (const part of parts) controller.enqueue(part);
      controller.close();
    },
  });
}

async function readAll(stream: ReadableStream<unknown>): Promise<unknown[]> {
  const parts: unknown[] = [];
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return parts;
    parts.push(value);
  }
}

/**
 * `model` with each call recorded as a step of `ctx`. A streamed turn is read to its end inside
 * its step and then given on from the record: the caller sees the whole turn at once, not
 * token by token (the price of replaying it exactly).
 *
 * @example
 * ```ts
 * const order = workflows.define('support', async (ctx, input: { prompt: string }) => {
 *   const { text } = await generateText({ model: durableModel(openai('gpt-5'), ctx), prompt: input.prompt, maxRetries: 0 });
 *   return text;
 * });
 * ```
 */
export function durableModel<M extends LanguageModelLike>(
  model: M,
  ctx: WorkflowContext,
  options: DurableModelOptions = {},
): M {
  const durable: LanguageModelLike = {
    specificationVersion: 'v3',
    provider: model.provider,
    modelId: model.modelId,
    get supportedUrls() {
      return model.supportedUrls;
    },
    doGenerate: (callOptions) =>
      ctx.step(
        `model:${nextModelTurn(ctx)}`,
        async () => recordable(await model.doGenerate(callOptions)),
        options.step,
      ),
    doStream: async (callOptions) => {
      const parts = await ctx.step(
        `model:${nextModelTurn(ctx)}`,
        async () => readAll((await model.doStream(callOptions)).stream),
        options.step,
      );
      return { stream: streamOf(parts) };
    },
  };
  return durable as M;
}
