// Preloaded into a process by bench/parse.ts (`node --import`): when the process exits, writes
// its peak resident set (getrusage ru_maxrss) as JSON to file descriptor 3, which the bench reads.
// Plain JavaScript, like timer-probe.mjs: a .ts preload would load Node's type stripper, which
// would count in the figure.
const { writeSync } = process.getBuiltinModule('node:fs');

process.on('exit', () => {
  writeSync(3, JSON.stringify({ maxRssKB: process.resourceUsage().maxRSS }));
});
