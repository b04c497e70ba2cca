// The apps the benchmarks deploy: small compose files that differ only by a comment.

// `count` apps named `${prefix}-0` …, publishing no port: a thousand apps then need no thousand
// real listeners in the simulator, and what is measured is the supervisor.
export function portlessApps(prefix: string, count: number): Array<[string, string]> {
  return Array.from({ length: count }, (_, i) => [`${prefix}-${i}.yml`, `# ${prefix} ${i}\nservices:\n  app:\n    image: nginx:1.27\n`]);
}
