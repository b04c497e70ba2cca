// node:test runs a test's after hooks in the order they were registered and skips the rest
// once one throws. A temp dir registered first was then removed while the server and child
// process registered after it still wrote into it (ENOTEMPTY), and the hooks that would have
// stopped them never ran: CI waited 89 minutes on a test file that could not exit.
// defer() gives each test one stack of steps run last-in first-out, every step run even when
// an earlier one fails, and the failures reported together at the end.
// Only `after` is needed, so helpers that take a narrow test context can use it too.
interface HasAfter {
  after(fn: () => Promise<void>): void;
}

const stacks = new WeakMap<HasAfter, Array<() => unknown>>();

export function defer(t: HasAfter, step: () => unknown): void {
  let stack = stacks.get(t);
  if (!stack) {
    const steps: Array<() => unknown> = [];
    stack = steps;
    stacks.set(t, steps);
    t.after(() => unwind(steps));
  }
  stack.push(step);
}

export async function unwind(steps: Array<() => unknown>): Promise<void> {
  const errors: unknown[] = [];
  while (steps.length > 0) {
    const step = steps.pop()!;
    try {
      await step();
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, `${errors.length} cleanup steps failed`);
}
