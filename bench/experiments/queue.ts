/**
 * The runner's loop: tasks in their order, each run by the one runner that claims it (./claims.ts),
 * so several runners on one results directory share the work. A runner takes the first task that is
 * not done, whose prerequisites are there (Task.ready) and that no live runner holds; it scans again
 * from the top after every task, so the order still says what is done first. When every task left
 * is held by another runner or waits for rows one is making, it polls; when nothing is held and a
 * task still is not ready, it runs it, so the task's own error says what is missing.
 */
import { claimPath, tryClaim } from './claims.js';
import type { Task } from './context.js';

export interface QueueEvents {
  /** Units of the tasks' cost done, by any runner; label: the task this runner is in, if any. */
  progress(at: number, label?: string): void;
  /** Every task left is held by another runner or waits for one: their labels. */
  waiting(labels: string[]): void;
}

/** Returns the number of tasks this runner ran. */
export async function runShared(tasks: Task[], resultsDir: string, events: QueueEvents, pollMs = 15_000): Promise<number> {
  const costLeft = () => tasks.reduce((a, t) => a + (t.done() ? 0 : t.cost), 0);
  const total = tasks.reduce((a, t) => a + t.cost, 0);
  let count = 0;
  for (;;) {
    const left = tasks.filter((t) => !t.done());
    if (!left.length) return count;
    let ran = false;
    const blocked: string[] = [];
    let heldElsewhere = false;
    for (const task of left) {
      if (task.ready && !task.ready()) { blocked.push(task.label); continue; }
      const release = tryClaim(claimPath(resultsDir, task.label));
      if (!release) { blocked.push(task.label); heldElsewhere = true; continue; }
      try {
        if (!task.done()) {
          await runOne(task, total - costLeft(), events);
          count++;
        }
      } finally {
        release();
      }
      ran = true;
      break;
    }
    if (ran) continue;
    if (!heldElsewhere) {
      // Nothing is held, so no runner will make the missing rows: run the first task to get its error.
      await runOne(left[0], total - costLeft(), events);
      return count + 1;
    }
    events.progress(total - costLeft());
    events.waiting(blocked);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

async function runOne(task: Task, at: number, events: QueueEvents): Promise<void> {
  const end = at + task.cost;
  events.progress(at, task.label);
  await task.run((units) => events.progress((at = Math.min(end, at + units)), task.label));
}
