// What a command does when the reader of its stdout goes away (`dstack-supervisor status | head
// -1`): Node ignores SIGPIPE, so the next write fails with EPIPE, which used to surface as an
// uncaught `Error: write EPIPE` with a stack and exit 1 (issue 15).
//   'exit':   a command that only reports (status, hash, resync, help, version) ends at once,
//             quietly, with status 0: the reader has what it wanted.
//   'finish': a command that changes the host (init, destroy) is not cut short because nobody
//             reads its output any more; the rest of the output is dropped, and its exit status is
//             its own.
// `run` installs neither: its stdout is the journal, and losing it is a failure systemd restarts.
export type ClosedStdout = 'exit' | 'finish';

// Install the handler on process.stdout; any other write error is thrown as before.
export function onClosedStdout(mode: ClosedStdout): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
    if (mode === 'exit') process.exit(0);
  });
}
