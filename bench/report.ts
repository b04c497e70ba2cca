// What every benchmark prints: its figures beside the machine they were taken on, as one JSON
// object on stdout, so `npm run bench` can collect them and README can quote them verbatim.
import { cpus, freemem, loadavg, totalmem } from 'node:os';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

// The machine and the moment: figures from a loaded 2-core box are not comparable without it.
export type MachineInfo = {
  node: string;
  cores: number;
  cpuModel: string;
  memoryMB: number;
  freeMemoryMB: number;
  // 1-, 5- and 15-minute load averages when the run started and when it ended.
  loadStart: number[];
  loadEnd?: number[];
};

// Describe this machine now.
export function describeMachine(): MachineInfo {
  const list = cpus();
  return {
    node: process.version,
    cores: list.length,
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    memoryMB: Math.round(totalmem() / 2 ** 20),
    freeMemoryMB: Math.round(freemem() / 2 ** 20),
    loadStart: loadavg().map((l) => Number(l.toFixed(2))),
  };
}

// Print the bench's one JSON object, with the machine and the load at the end.
export function printResult(bench: string, machine: MachineInfo, figures: Record<string, unknown>): void {
  const result = { bench, ...figures, machine: { ...machine, loadEnd: loadavg().map((l) => Number(l.toFixed(2))) } };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

// Nearest-rank percentile of `values` (p in 0..100), rounded to 0.1 ms.
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return round(sorted[rank] ?? Number.NaN);
}

// Round to 0.1 (ms, MB, s: every figure here is fine at that precision).
export function round(value: number): number {
  return Math.round(value * 10) / 10;
}

// The bench's command-line options: `--name value` pairs, numbers only.
export function numberArgs<K extends string>(defaults: Record<K, number>): Record<K, number> {
  const options = Object.fromEntries(Object.keys(defaults).map((k) => [k, { type: 'string' as const }]));
  const { values } = parseArgs({ options, strict: true, allowPositionals: false });
  const out = { ...defaults };
  for (const key of Object.keys(defaults) as K[]) {
    const raw = (values as Record<string, string | undefined>)[key];
    if (raw === undefined) continue;
    const n = Number(raw);
    if (!Number.isFinite(n)) throw new Error(`--${key} wants a number, not ${JSON.stringify(raw)}`);
    out[key] = n;
  }
  return out;
}

// A process's CPU time (user + system, ms) and resident set (MB) from /proc: all of it, its peak,
// and its two parts: anonymous memory (heaps, stacks, JIT code) and pages of mapped files (the
// node binary and shared libraries, counted where touched).
export async function sampleProcess(pid: number): Promise<{ cpuMs: number; rssMB: number; peakRssMB: number; anonMB: number; fileMB: number }> {
  const stat = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
  // Fields 14 and 15 (utime, stime) in clock ticks; after "pid (comm) " they are at 11 and 12.
  const ticks = Number(stat[11]) + Number(stat[12]);
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  // USER_HZ is 100 on every Linux this runs on (sysconf(_SC_CLK_TCK)).
  return {
    cpuMs: ticks * 10,
    rssMB: round(kb('VmRSS') / 1024),
    peakRssMB: round(kb('VmHWM') / 1024),
    anonMB: round(kb('RssAnon') / 1024),
    fileMB: round(kb('RssFile') / 1024),
  };
}

// The CPU ms process `pid` spends from `start` (its CPU ms then) until a second passes in which it
// uses at most `flatMs` (a sampling profiler's own thread keeps it from standing still).
export async function cpuUntilFlat(pid: number, start: number, flatMs = 20): Promise<number> {
  let last = start;
  for (;;) {
    await new Promise((r) => setTimeout(r, 1000));
    const now = (await sampleProcess(pid)).cpuMs;
    if (now - last <= flatMs) return now - start;
    last = now;
  }
}
