// Runs the benchmark definitions of this folder on aws-local-stepfunctions, the npm peer
// engine, and prints one `RESULT {json}` line per scenario, as the Rust benchmark does.
//
//   node benchmarks/states/peer.mjs <node_modules dir>
//
// On Node 20, Promise.withResolvers (Node 22) is missing; the package needs it, so it is
// polyfilled here.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

if (!Promise.withResolvers) {
  Promise.withResolvers = function withResolvers() {
    let resolve;
    let reject;
    const promise = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

const here = dirname(fileURLToPath(import.meta.url));
const modules = process.argv[2];
if (!modules) {
  console.error('usage: node peer.mjs <node_modules dir>');
  process.exit(2);
}
const entry = join(modules, 'aws-local-stepfunctions', 'build', 'main.node.esm.js');
const { StateMachine } = await import(pathToFileURL(entry).href);

const load = (name) => JSON.parse(readFileSync(join(here, name), 'utf8'));
const nLoop = Number(process.env.BENCH_LOOP_N || 20000);
const items = Array.from({ length: 1000 }, (_, i) => ({ index: i, text: `sentence ${i}` }));
const identity = async (input) => input;

const scenarios = [
  { name: 'loop/memory', file: 'loop.asl.json', input: { n: nLoop }, transitions: 2 * nLoop + 2, executions: 1 },
  { name: 'map1000/memory', file: 'map.asl.json', input: { items }, transitions: 1001, executions: 1 },
  { name: 'map1000-task/memory', file: 'map-task.asl.json', input: { items }, transitions: 1001, executions: 1 },
  { name: '200x-loop100/memory', file: 'loop.asl.json', input: { n: 100 }, transitions: 202, executions: 200 },
];

const filter = process.env.BENCH_FILTER;
for (const s of scenarios) {
  if (filter && !s.name.includes(filter)) continue;
  const machine = new StateMachine(load(s.file), { validationOptions: { checkArn: false } });
  const runOnce = async () => {
    const started = performance.now();
    const runs = [];
    for (let i = 0; i < s.executions; i++) {
      runs.push(machine.run(s.input, { overrides: { taskResourceLocalHandlers: { Work: identity } } }).result);
    }
    await Promise.all(runs);
    return (performance.now() - started) / 1000;
  };
  // A warm-up, then at least 11 runs and at least half a second of them (the median counts).
  const warm = await runOnce();
  const runs = Math.min(301, Math.max(11, Math.ceil(0.5 / Math.max(warm, 1e-6)))) | 1;
  const times = [];
  for (let i = 0; i < runs; i++) times.push(await runOnce());
  times.sort((a, b) => a - b);
  const seconds = times[(runs - 1) / 2];
  const total = s.transitions * s.executions;
  const perSecond = total / seconds;
  console.log(`${s.name.padEnd(22)} ${String(total).padStart(12)} ${seconds.toFixed(4).padStart(10)} ${perSecond.toFixed(0).padStart(14)} ${(1e6 / perSecond).toFixed(2).padStart(12)}`);
  console.log(`RESULT ${JSON.stringify({ engine: 'aws-local-stepfunctions', scenario: s.name, transitions: total, seconds, transitions_per_second: perSecond })}`);
}
