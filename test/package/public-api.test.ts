// The public API, as users get it: the names each subpath of the exports map declares in its
// published types (dist/**/index.d.ts for import, dist/cjs/**/index.d.cts for require), checked
// against the list below. A change to the public API is a deliberate edit of that list. And what
// is marked `@internal` in src/ (members JavaScript needs public, such as `Engine.call`) must not
// be in the published declarations: `stripInternal` in tsconfig.build.json removes it.
// Needs `npm run build` first.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = fileURLToPath(new URL('../../', import.meta.url));
if (!existsSync(join(root, 'dist', 'core', 'index.d.ts')))
  throw new Error('dist/ is missing: run `npm run build` first.');

/**
 * Every name each subpath exports, values and types alike, sorted. The adapter subpaths
 * (`./http`, `./node`, `./express`, ...) are being reshaped: refresh them from the build.
 */
const PUBLIC_API: Record<string, readonly string[]> = {
  '.': [
    'AdminStore',
    'BeginInput',
    'ClaimOutcome',
    'Decision',
    'EncryptionKey',
    'EncryptionKeys',
    'Engine',
    'EngineOptions',
    'ErrorClass',
    'ErrorCode',
    'ErrorRevivalOptions',
    'IdemEvent',
    'IdempotencyContext',
    'IdempotencyError',
    'IdempotencyErrorOptions',
    'IdempotencyRecord',
    'IdempotentOptions',
    'Lease',
    'OnStoreUnavailable',
    'Outcome',
    'OutcomeKind',
    'RecordState',
    'Store',
    'StoredError',
    'SweepResult',
    'Sweeper',
    'SweeperOptions',
    'TelemetryAttributes',
    'TelemetryCounter',
    'TelemetryHistogram',
    'TelemetryMeter',
    'TelemetryOptions',
    'TelemetrySpan',
    'TelemetryTracer',
    'UnprotectedReason',
    'UnprotectedRun',
    'ValueSerializer',
    'defaultSerializer',
    'fingerprintOf',
    'idempotencyContext',
    'idempotent',
    'isIdempotencyError',
    'startSweeper',
    'storeKeyOf',
  ],
  './memory': ['MemoryStore', 'MemoryStoreOptions'],
  './sqlite': ['SqliteDatabaseLike', 'SqliteStatementLike', 'SqliteStore', 'SqliteStoreOptions'],
  './postgres': ['PgPoolLike', 'PostgresStore', 'PostgresStoreOptions'],
  './redis': ['RedisLike', 'RedisStore', 'RedisStoreOptions'],
  './mysql': ['MysqlConnectionLike', 'MysqlPoolLike', 'MysqlQuery', 'MysqlStore', 'MysqlStoreOptions', 'MysqlValue'],
  './dynamodb': [
    'DYNAMODB_MAX_RESULT_BYTES',
    'DynamoDbClientLike',
    'DynamoDbCredentials',
    'DynamoDbStore',
    'DynamoDbStoreOptions',
  ],
  './http': [
    'AnonymousPolicy',
    'CachePolicy',
    'CallerScopeOptions',
    'DEFAULT_MAX_BODY_BYTES',
    'DEFAULT_METHODS',
    'DEFAULT_REPLAY_HEADERS',
    'DEFAULT_RETRY_AFTER_MS',
    'DEFAULT_SCOPE_HEADERS',
    'FingerprintOptions',
    'HttpDecision',
    'HttpEvent',
    'HttpIdempotency',
    'HttpIdempotencyOptions',
    'HttpIdentification',
    'HttpIdentity',
    'HttpRequestInfo',
    'HttpResponseData',
    'HttpStoreKeyParts',
    'NOT_STORED_BY_DEFAULT',
    'Problems',
    'ResponseRecording',
    'UNPROTECTED_HEADER',
    'callerScope',
    'httpStoreKey',
    'parseIdempotencyKey',
    'problemResponse',
    'requestFingerprint',
  ],
  './express': ['ExpressIdempotencyMiddleware', 'ExpressIdempotencyOptions', 'ExpressRequestLike', 'idempotency'],
  './fastify': ['FastifyIdempotencyOptions', 'FastifyRouteIdempotency', 'idempotency'],
  './hono': ['HonoIdempotencyOptions', 'idempotency'],
  './koa': ['KoaIdempotencyOptions', 'idempotency'],
  './nest': [
    'IDEMPOTENCY_OPTIONS',
    'IDEMPOTENT_METADATA',
    'IdempotencyInterceptor',
    'IdempotencyModule',
    'IdempotencyModuleAsyncOptions',
    'Idempotent',
    'IdempotentRouteOptions',
    'NestIdempotencyOptions',
  ],
  './node': ['BufferedRequest', 'NodeIdempotencyOptions', 'withIdempotency'],
  './lambda': ['LambdaContextLike', 'LambdaIdempotencyOptions', 'makeIdempotent'],
  './store-kit': [
    'AdminStore',
    'AppendInput',
    'ClaimInput',
    'ClaimResult',
    'CompleteInput',
    'ExtendInput',
    'GivenClient',
    'IdempotencyRecord',
    'JournalEntry',
    'JournalStore',
    'LazyClientOptions',
    'ListOptions',
    'ListPage',
    'MisconfigurationAdvice',
    'OwnClient',
    'RecordState',
    'ReopenInput',
    'RunListOptions',
    'RunPage',
    'SqlInteger',
    'SqlRecordRow',
    'Store',
    'StoreLimits',
    'StoreOperations',
    'StoreOperationsOptions',
    'asBuffer',
    'canTakeOver',
    'checkGetManyKeys',
    'checkIdentifier',
    'checkListLimit',
    'checkOneConnection',
    'checkSweepLimit',
    'decideClaim',
    'extendedRecord',
    'freshRecord',
    'getMany',
    'importDriver',
    'invalidOptions',
    'isAdminStore',
    'isClaimable',
    'isDriverMissing',
    'isDueRun',
    'isExpired',
    'isJournalStore',
    'mayAppend',
    'mayReopen',
    'pageOf',
    'recordsInOrder',
    'reopenedRecord',
    'resolveGiven',
    'storeClosed',
    'takenOverRecord',
    'toRecord',
  ],
  './testing': [
    'Attempt',
    'CheckCrashesOptions',
    'CheckExchange',
    'CheckIdempotencyOptions',
    'CheckRequest',
    'CheckTarget',
    'ConformanceApp',
    'ConformanceRoute',
    'ConformanceTestApi',
    'ConformanceTestContext',
    'CrashContext',
    'CrashPoint',
    'CrashReport',
    'FastifyLike',
    'FetchHandlerLike',
    'HttpConformanceOptions',
    'IDEMPOTENCY_SCENARIOS',
    'IdempotencyReport',
    'IdempotencyScenarioName',
    'KoaLike',
    'NetworkFault',
    'NetworkPlan',
    'NeutralResponse',
    'OutboxConformanceOptions',
    'OutboxConformanceTarget',
    'OutboxScenario',
    'OutboxScenarioCounts',
    'RetryingClient',
    'RetryingClientOptions',
    'RetryingRequest',
    'RunningServer',
    'ScenarioEvidence',
    'ScenarioReport',
    'SendOptions',
    'SendReport',
    'SentResponse',
    'StoreConformanceOptions',
    'StoreScenario',
    'TargetKind',
    'assertCrashSafe',
    'assertIdempotent',
    'checkCrashes',
    'checkIdempotency',
    'crashScenario',
    'retryingClient',
    'runHttpConformance',
    'runOutboxConformance',
    'runStoreConformance',
    'send',
    'writeNeutralResponse',
  ],
  './agent': [
    'AgentAnswer',
    'AgentInput',
    'AgentRun',
    'AiToolLike',
    'ApprovalDecision',
    'DurableGenerateTextOptions',
    'DurableModelOptions',
    'DurableToolOptions',
    'GenerateResultLike',
    'GuardOptions',
    'GuardedPlainTool',
    'HandoffRecord',
    'HandoffRunOptions',
    'InvokableTool',
    'KeyBy',
    'LanguageModelLike',
    'OpenAIAgentRunOptions',
    'OpenAISingleToolGuardOptions',
    'OpenAIToolGuardOptions',
    'PendingApproval',
    'PlainTool',
    'Refusal',
    'StreamResultLike',
    'TOOL_NAMESPACE',
    'TextResultLike',
    'ToolCall',
    'ToolCallContext',
    'ToolCallOptionsLike',
    'ToolGuard',
    'agentWorkflow',
    'approvalSignalName',
    'currentAgentRun',
    'durableGenerateText',
    'durableModel',
    'guardOpenAIHandoff',
    'guardOpenAITool',
    'guardOpenAITools',
    'guardTool',
    'guardTools',
    'guardedCall',
    'handoffRun',
    'inAgentRun',
    'isGuardedOpenAIHandoff',
    'isGuardedOpenAITool',
    'isRecordedModel',
    'pendingApprovals',
    'recordedModel',
    'recordedModelProvider',
    'runOpenAIAgent',
    'toolCallContext',
  ],
  './backfill': [
    'BACKFILL_NAMESPACE',
    'BackfillContext',
    'BackfillFailure',
    'BackfillHandler',
    'BackfillOptions',
    'BackfillProgress',
    'BackfillResult',
    'DEFAULT_BACKFILL_RETENTION_MS',
    'backfill',
    'backfillKeyOf',
  ],
  './messaging': [
    'AmqpChannelLike',
    'AmqpConfirmChannelLike',
    'AmqpConsumer',
    'AmqpConsumingChannelLike',
    'AmqpHandlerOptions',
    'AmqpMessageHandler',
    'AmqpPublishProperties',
    'AmqpPublisherOptions',
    'AmqpReturnedMessage',
    'AmqpSettlement',
    'BullJobLike',
    'BullJobProcessor',
    'ConsumeAmqpOptions',
    'ConsumeJetStreamOptions',
    'ConsumeOutcome',
    'ConsumerInbox',
    'DEFAULT_INBOX_RETENTION_MS',
    'DeadMessage',
    'GuardedBullProcessor',
    'GuardedPgBossHandler',
    'Inbox',
    'InboxContext',
    'InboxMessage',
    'InboxOptions',
    'JetStreamConsumer',
    'JetStreamConsumerLike',
    'JetStreamHandlerOptions',
    'JetStreamLike',
    'JetStreamMessageHandler',
    'JetStreamPublishOptionsLike',
    'JetStreamPublisherOptions',
    'JetStreamSettlement',
    'JobGuardOptions',
    'MysqlOutboxConnectionLike',
    'MysqlOutboxOptions',
    'MysqlOutboxPoolLike',
    'MysqlOutboxPooledConnectionLike',
    'MysqlOutboxQuery',
    'NATS_MSG_ID_HEADER',
    'NatsHeadersLike',
    'OutboxCounts',
    'OutboxLimits',
    'OutboxMessage',
    'OutboxPublisher',
    'OutboxRelay',
    'OutboxRelayOptions',
    'OutboxStore',
    'PendingMessage',
    'PgBossJobHandler',
    'PgBossJobLike',
    'PgOutboxClientLike',
    'PgOutboxPoolLike',
    'PgOutboxPooledClientLike',
    'PgOutboxResultLike',
    'PostgresOutboxOptions',
    'PublishResult',
    'RelayBackoff',
    'RelayCleanup',
    'RelayPassInput',
    'RelayPassResult',
    'SqlInbox',
    'SqlInboxContext',
    'SqlInboxOptions',
    'SqliteOutbox',
    'SqliteOutboxDatabaseLike',
    'SqliteOutboxOptions',
    'SqliteOutboxStatementLike',
    'amqpHandler',
    'amqpPublisher',
    'consumeAmqp',
    'consumeJetStream',
    'consumeOnce',
    'guardBullProcessor',
    'guardPgBossHandler',
    'jetStreamHandler',
    'jetstreamPublisher',
    'mysqlOutbox',
    'postgresOutbox',
    'sqliteOutbox',
  ],
  './notify': [
    'Channel',
    'ChannelNotification',
    'DEFAULT_SUPPRESSION_RETENTION_MS',
    'Delivery',
    'EmailChannelOptions',
    'EmailMessage',
    'FOREVER_MS',
    'FunctionNotification',
    'LogKind',
    'LogPage',
    'LogQuery',
    'MailTransportLike',
    'NotificationLogEntry',
    'Notifier',
    'NotifierOptions',
    'NotifyInput',
    'NotifyResult',
    'Override',
    'SendFunction',
    'SendReceipt',
    'SuppressedBecause',
    'WebhookChannelOptions',
    'WebhookStatusError',
    'emailChannel',
    'notifyOnce',
    'webhookChannel',
  ],
  './workflow': [
    'DefineOptions',
    'ListRunsOptions',
    'MysqlConnectionLike',
    'MysqlConnectionPoolLike',
    'MysqlStepsOptions',
    'PgConnectionLike',
    'PgConnectionPoolLike',
    'PostgresStepsOptions',
    'Reconciliation',
    'RecordedStep',
    'RecoverOptions',
    'ResultOptions',
    'RetryOptions',
    'RunState',
    'RunView',
    'SqliteStepDatabaseLike',
    'SqliteStepsOptions',
    'StartOptions',
    'StepContext',
    'StepDatabase',
    'StepIdentity',
    'StepOptions',
    'StepOutcome',
    'StepRef',
    'StepView',
    'WorkerOptions',
    'WorkflowContext',
    'WorkflowDefinition',
    'WorkflowFunction',
    'WorkflowHandle',
    'WorkflowWorker',
    'Workflows',
    'WorkflowsOptions',
    'mysqlSteps',
    'postgresSteps',
    'sqliteSteps',
  ],
};

interface Subpath {
  name: string;
  esm: string;
  cjs: string;
}

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  exports: Record<string, string | { types: string; require: { types: string } }>;
};
const subpaths: Subpath[] = Object.entries(pkg.exports).flatMap(([name, target]) =>
  typeof target === 'string' ? [] : [{ name, esm: join(root, target.types), cjs: join(root, target.require.types) }],
);

const program = ts.createProgram(
  subpaths.flatMap(({ esm, cjs }) => [esm, cjs]),
  {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: ['node'],
  },
);
const checker = program.getTypeChecker();

function moduleOf(file: string): ts.Symbol {
  const source = program.getSourceFile(file);
  assert.ok(source, `${relative(root, file)} is not built`);
  const symbol = checker.getSymbolAtLocation(source);
  assert.ok(symbol, `${relative(root, file)} is not a module`);
  return symbol;
}

function exportedNames(file: string): string[] {
  return checker
    .getExportsOfModule(moduleOf(file))
    .map((symbol) => symbol.name)
    .sort();
}

/** The published declaration files: every .d.ts and .d.cts under dist/, the CLI's included. */
function declarationFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return declarationFiles(path);
    return /\.d\.c?ts$/.test(entry.name) ? [path] : [];
  });
}

/** `Class.member` for every class member of src/ whose doc comment says `@internal`. */
function internalMembers(): Map<string, Set<string>> {
  const found = new Map<string, Set<string>>();
  const visit = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) visit(path);
      else if (entry.name.endsWith('.ts')) {
        const source = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true);
        for (const statement of source.statements) {
          if (!ts.isClassDeclaration(statement) || statement.name === undefined) continue;
          for (const member of statement.members) {
            if (!ts.getJSDocTags(member).some((tag) => tag.tagName.text === 'internal')) continue;
            const name = ts.isConstructorDeclaration(member) ? 'constructor' : member.name?.getText(source);
            if (name === undefined) continue;
            const members = found.get(statement.name.text) ?? new Set<string>();
            found.set(statement.name.text, members.add(name));
          }
        }
      }
    }
  };
  visit(join(root, 'src'));
  return found;
}

/** The members a published class declares, static ones included; `constructor` only when public. */
function publishedMembers(declaration: ts.ClassDeclaration): string[] {
  return declaration.members.flatMap((member) => {
    if (ts.isConstructorDeclaration(member)) {
      const hidden = ts.getCombinedModifierFlags(member) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected);
      return hidden ? [] : ['constructor'];
    }
    return member.name === undefined ? [] : [member.name.getText()];
  });
}

describe('the public API', () => {
  for (const { name, esm, cjs } of subpaths) {
    it(`${name} exports exactly the names in its list, for import and for require`, () => {
      assert.deepEqual(exportedNames(esm), PUBLIC_API[name], `${name} (${relative(root, esm)})`);
      assert.deepEqual(exportedNames(cjs), PUBLIC_API[name], `${name} (${relative(root, cjs)})`);
    });
  }

  it('lists every subpath of the exports map, and no other', () => {
    assert.deepEqual(Object.keys(PUBLIC_API).sort(), subpaths.map(({ name }) => name).sort());
  });

  it('publishes no declaration marked @internal', () => {
    const leaked = declarationFiles(join(root, 'dist')).filter((file) =>
      readFileSync(file, 'utf8').includes('@internal'),
    );
    assert.deepEqual(
      leaked.map((file) => relative(root, file)),
      [],
    );
  });

  it('publishes no @internal class member on any exported class', () => {
    const internal = internalMembers();
    assert.ok(internal.get('Engine')?.has('call'), 'Engine.call is marked @internal in src/core/engine.ts');
    const leaked: string[] = [];
    for (const { esm, cjs } of subpaths) {
      for (const file of [esm, cjs]) {
        for (const symbol of checker.getExportsOfModule(moduleOf(file))) {
          const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
          for (const declaration of target.declarations ?? []) {
            if (!ts.isClassDeclaration(declaration)) continue;
            const hidden = internal.get(target.name) ?? new Set<string>();
            for (const member of publishedMembers(declaration)) {
              if (hidden.has(member)) leaked.push(`${target.name}.${member} in ${relative(root, file)}`);
            }
          }
        }
      }
    }
    assert.deepEqual(leaked, []);
  });

  it('gives Engine no call or codec, and Lease only a private constructor, in idem', () => {
    const core = subpaths.find(({ name }) => name === '.');
    assert.ok(core);
    for (const file of [core.esm, core.cjs]) {
      const classes = new Map<string, ts.ClassDeclaration>();
      for (const symbol of checker.getExportsOfModule(moduleOf(file))) {
        const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
        const declaration = target.declarations?.find(ts.isClassDeclaration);
        if (declaration) classes.set(target.name, declaration);
      }
      const engine = classes.get('Engine');
      const lease = classes.get('Lease');
      assert.ok(engine && lease, `Engine and Lease are exported by ${relative(root, file)}`);
      const engineMembers = publishedMembers(engine);
      assert.ok(engineMembers.includes('begin'));
      assert.ok(!engineMembers.includes('call') && !engineMembers.includes('codec'), engineMembers.join(', '));
      // A stripped constructor would leave TypeScript's implicit public one: Lease must declare a private one.
      assert.ok(lease.members.some(ts.isConstructorDeclaration), 'Lease declares its constructor');
      const leaseMembers = publishedMembers(lease);
      assert.ok(!leaseMembers.includes('constructor') && !leaseMembers.includes('granted'), leaseMembers.join(', '));
    }
  });
});
