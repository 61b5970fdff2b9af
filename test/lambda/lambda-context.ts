import { randomUUID } from 'node:crypto';

/** The context object Lambda's Node.js runtime passes to a handler, as `@types/aws-lambda` describes it. */
export interface LambdaContext {
  callbackWaitsForEmptyEventLoop: boolean;
  functionName: string;
  functionVersion: string;
  invokedFunctionArn: string;
  memoryLimitInMB: string;
  awsRequestId: string;
  logGroupName: string;
  logStreamName: string;
  getRemainingTimeInMillis(): number;
  done(error?: Error, result?: unknown): void;
  fail(error: Error | string): void;
  succeed(messageOrObject: unknown): void;
}

/**
 * A context for one invocation whose deadline is `remainingMs` after `now()` at creation, read
 * on the same clock `now` (the engine's), as Lambda counts it down.
 */
export function lambdaContext(options: {
  now: () => number;
  remainingMs: number;
  functionName?: string;
}): LambdaContext {
  const functionName = options.functionName ?? 'charge-orders';
  const deadlineMs = options.now() + options.remainingMs;
  const unsupported = () => {
    throw new Error('callback-style completion is not used by async handlers');
  };
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:${functionName}`,
    memoryLimitInMB: '128',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: '2026/01/01/[$LATEST]0123456789abcdef0123456789abcdef',
    getRemainingTimeInMillis: () => Math.max(0, deadlineMs - options.now()),
    done: unsupported,
    fail: unsupported,
    succeed: unsupported,
  };
}
