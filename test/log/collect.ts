// A log destination for tests: keeps each written line, parsed after its `<N>` prefix.
export type LogLine = { priority: number; fields: Record<string, unknown> };

// Collect lines written by a logger created with this stream.
export function collectLines(): { stream: { write(line: string): void }; lines: LogLine[] } {
  const lines: LogLine[] = [];
  return {
    lines,
    stream: {
      write(line) {
        const match = /^<(\d)>(\{.*\})\n$/s.exec(line);
        if (!match) throw new Error(`log line without a journald prefix: ${JSON.stringify(line)}`);
        lines.push({ priority: Number(match[1]), fields: JSON.parse(match[2]!) as Record<string, unknown> });
      },
    },
  };
}
