// The top functions of a V8 CPU profile (.cpuprofile, as node --cpu-prof and the inspector's
// Profiler.stop give it) by self time and by total time, in ms; `node bench/profile-top.ts FILE [N]`.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';

export type CpuProfile = {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }>;
  // Microseconds on the monotonic clock (process.hrtime's, in any process on this machine).
  startTime: number;
  samples: number[];
  timeDeltas: number[];
};

// The samples taken from `fromUs` to `toUs` (monotonic µs), as a profile of their own: what ran
// while one slow drop waited.
export function profileWindow(profile: CpuProfile, fromUs: number, toUs: number): CpuProfile {
  const samples: number[] = [];
  const timeDeltas: number[] = [];
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    at += profile.timeDeltas[i] ?? 0;
    if (at < fromUs || at > toUs) return;
    samples.push(id);
    timeDeltas.push(samples.length === 1 ? 0 : (profile.timeDeltas[i] ?? 0));
  });
  return { nodes: profile.nodes, startTime: fromUs, samples, timeDeltas };
}

// Self and total ms per function (name, file and line), the N largest of each.
// `longestBusyMs`: the longest run of samples with the thread never idle, the work a drop's timer
// and I/O competed with there (one task or many; a resync beside a drop, issue 18).
export function topFunctions(profile: CpuProfile, n: number): { sampledMs: number; longestBusyMs: number; self: string[]; total: string[] } {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const key = (id: number) => {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    return `${functionName || '(anonymous)'} ${url ? `${basename(url)}:${lineNumber + 1}` : ''}`.trim();
  };
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let sampledMs = 0;
  let busyMs = 0;
  let longestBusyMs = 0;
  profile.samples.forEach((id, i) => {
    const ms = (profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0) / 1000;
    sampledMs += ms;
    busyMs = byId.get(id)!.callFrame.functionName === '(idle)' ? 0 : busyMs + ms;
    longestBusyMs = Math.max(longestBusyMs, busyMs);
    self.set(key(id), (self.get(key(id)) ?? 0) + ms);
    // Each function once per sample, however deep it recurses.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) seen.add(key(at));
    for (const k of seen) total.set(k, (total.get(k) ?? 0) + ms);
  });
  const top = (map: Map<string, number>) =>
    [...map].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, ms]) => `${ms.toFixed(0).padStart(6)} ms ${k}`);
  return { sampledMs: Math.round(sampledMs), longestBusyMs: Math.round(longestBusyMs), self: top(self), total: top(total) };
}

if (import.meta.main) {
  const [file, n] = process.argv.slice(2);
  const { sampledMs, longestBusyMs, self, total } = topFunctions(JSON.parse(await readFile(file!, 'utf8')) as CpuProfile, Number(n ?? 30));
  process.stdout.write(`sampled ${sampledMs} ms, longest busy ${longestBusyMs} ms\n-- self\n${self.join('\n')}\n-- total\n${total.join('\n')}\n`);
}
