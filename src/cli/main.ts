#!/usr/bin/env node
/**
 * @module cli/main
 * The `switchyard` command: `serve` runs the gateway, `engine` runs one emulated engine, `sim`
 * replays a trace, `fidelity` checks the engine model against real measurements, `calibrate` fits
 * an engine profile to a live engine, `admin` calls the admin API.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfigFile } from '../config/load.js';
import { SwitchyardError } from '../core/errors.js';
import type { SwitchyardConfig } from '../config/schema.js';
import { ProfileFileError, knownProfileNames, registerProfileFiles } from '../engine-model/profile-file.js';
import { getProfile } from '../engine-model/profiles.js';
import { EmulatedEngineServer } from '../emulator/server.js';
import { Gateway } from '../gateway/server.js';
import { createLogger } from '../obs/logger.js';
import { TraceError } from '../traces/loaders.js';
import { FidelityDataError } from '../fidelity/data.js';
import { fidelity } from './fidelity.js';
import { admin } from './admin.js';
import { calibrate } from './calibrate.js';
import { UsageError, sim } from './sim.js';

const DEMO_CONFIG = fileURLToPath(new URL('../../../config/demo.yaml', import.meta.url));

const USAGE = `switchyard — an OpenAI-compatible inference control plane

Usage:
  switchyard serve [--config FILE] [--port N] [--host ADDR]   run the gateway (default: the embedded demo)
  switchyard engine --profile NAME [--port N] [--host ADDR]   run one emulated engine
  switchyard engine --list-profiles                           list engine profiles
  switchyard sim --trace FILE --out DIR [...]                 replay a trace on a virtual clock
  switchyard fidelity --data DIR [--json FILE]                the engine model against real measurements
  switchyard calibrate --url URL --model NAME --out FILE      fit an engine profile to a live engine
  switchyard admin RESOURCE VERB [...]                        tenants, keys, usage (the admin API)
  switchyard COMMAND --help                                   help for a command
`;

const SERVE_HELP = `Usage: switchyard serve [--config FILE] [--port N] [--host ADDR]

Runs the gateway. Without --config it serves the embedded demo (config/demo.yaml): two tiers of
emulated engines started in-process. The port comes from --port, else the PORT environment
variable, else server.port in the config (default 8080).

Signals: SIGHUP reloads the config file (in-flight requests are kept; a bad file is rejected and
the running config stays); SIGTERM or SIGINT drains in-flight requests up to
server.drainTimeoutMs and exits 0.

Options:
  --config FILE   YAML configuration (see docs/configuration.md)
  --port N        listen port (overrides PORT and server.port)
  --host ADDR     listen address (default 127.0.0.1; another address needs keys or
                  auth.mode: none in the config)
  -h, --help      this help
`;

const ENGINE_HELP = `Usage: switchyard engine --profile NAME [--profile-file FILE] [--port N] [--host ADDR] [--model NAME] [--cold-start | --cold-start-ms N]

Runs one emulated engine: the engine performance model on the wall clock behind a real HTTP server
that speaks the OpenAI API (/v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models) and
exposes vLLM-compatible /metrics and /health. It is a stand-in for a GPU engine: text is filler,
token counts and timing follow the profile.

Options:
  --profile NAME     engine profile (see --list-profiles)
  --profile-file F   load a profile file (e.g. from \`switchyard calibrate\`) that --profile can name;
                     repeatable
  --port N           listen port (default 8000)
  --host ADDR        listen address (default 127.0.0.1)
  --model NAME       served model name (default: the profile's model id)
  --output-tokens N  tokens generated when a request sets no max_tokens (default 64)
  --cold-start       wait the profile's cold-start time before serving
  --cold-start-ms N  wait N ms before serving instead (a shorter stand-in for demos and tests)
  --list-profiles    print the profiles and exit
  -h, --help         this help
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === 'serve') return serve(rest);
  if (command === 'engine') return engine(rest);
  if (command === 'sim') return sim(rest);
  if (command === 'fidelity') return fidelity(rest);
  if (command === 'calibrate') return calibrate(rest);
  if (command === 'admin') return admin(rest);
  process.stderr.write(`unknown command "${command}"\n\n${USAGE}`);
  return 2;
}

async function serve(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(SERVE_HELP);
    return 0;
  }
  const path = values.config ?? DEMO_CONFIG;
  const load = (): SwitchyardConfig => withListenOverrides(loadConfigFile(path), values.port, values.host);
  const config = load();
  const log = createLogger(config.log.level);
  const gw = await Gateway.start({ config, logger: log });
  const pools = Object.keys(config.pools).join(', ');
  log.info({ url: gw.baseUrl, config: path, pools }, `switchyard listening on :${gw.port}`);

  const rejected = (err: Error): void =>
    log.error({ err: err.message }, 'reload rejected; the running configuration stays');
  process.on('SIGHUP', () => {
    let next: SwitchyardConfig;
    try {
      next = load(); // a file that no longer parses or validates must not take the gateway down
    } catch (err) {
      rejected(err as Error);
      return;
    }
    // The gateway logs "configuration reloaded" itself (for every caller of reload), so not here.
    gw.reload(next).catch(rejected);
  });
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      log.info({ signal, inFlight: gw.inFlight }, 'draining');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  const { cut } = await gw.shutdown();
  log.info({ cut }, 'stopped');
  return 0;
}

/** Applies --port / PORT / --host over the file's values (listening is not part of a reload). */
function withListenOverrides(cfg: SwitchyardConfig, port?: string, host?: string): SwitchyardConfig {
  const p = port ?? process.env.PORT;
  const server = { ...cfg.server };
  if (p !== undefined && p !== '') {
    const n = Number(p);
    if (!Number.isInteger(n) || n < 0 || n > 65535)
      throw new ConfigError(`--port/PORT: "${p}" is not a port number`);
    server.port = n;
  }
  if (host !== undefined) server.host = host;
  return { ...cfg, server };
}

async function engine(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      profile: { type: 'string' },
      'profile-file': { type: 'string', multiple: true },
      port: { type: 'string', default: '8000' },
      host: { type: 'string', default: '127.0.0.1' },
      model: { type: 'string' },
      'output-tokens': { type: 'string' },
      'cold-start': { type: 'boolean' },
      'cold-start-ms': { type: 'string' },
      'list-profiles': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(ENGINE_HELP);
    return 0;
  }
  registerProfileFiles(values['profile-file'] ?? [], 'cli', '--profile-file');
  if (values['list-profiles']) {
    for (const p of knownProfileNames().map(getProfile))
      process.stdout.write(`${p.name}\t${p.model}\t${p.gpu}\n`);
    return 0;
  }
  if (values.profile === undefined) {
    process.stderr.write(`--profile is required\n\n${ENGINE_HELP}`);
    return 2;
  }
  let profile = getProfile(values.profile);
  let coldStart = values['cold-start'] ?? false;
  if (values['cold-start-ms'] !== undefined) {
    const ms = Number(values['cold-start-ms']);
    if (!Number.isInteger(ms) || ms < 0)
      throw new UsageError('--cold-start-ms: give a whole number of ms ≥ 0');
    profile = { ...profile, coldStartMs: ms };
    coldStart = ms > 0;
  }
  const server = new EmulatedEngineServer({
    profile,
    ...(values.model ? { servedModelName: values.model } : {}),
    ...(values['output-tokens'] ? { defaultOutputTokens: Number(values['output-tokens']) } : {}),
    coldStart,
  });
  const url = await server.listen(Number(values.port), values.host);
  const log = createLogger('info');
  log.info({ url, profile: values.profile, model: server.servedModelName }, 'emulated engine listening');
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await server.close();
  // A cold start still under way holds a timer for up to the profile's coldStartMs; a stopped
  // engine must not linger for it (a process actuator cancelling a cold start waits for the exit).
  process.exit(0);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const usage =
      err instanceof ConfigError ||
      err instanceof UsageError ||
      err instanceof TraceError ||
      err instanceof FidelityDataError ||
      err instanceof ProfileFileError ||
      err instanceof SwitchyardError;
    if (usage || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`switchyard: ${(err as Error).message}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`switchyard: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
