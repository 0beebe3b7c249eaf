/**
 * Preloaded (`node --import`) into the processes the fault bench and the soak start: writes
 * process.memoryUsage() to HOOKLINE_MEMORY_PROBE every second, so the bench can read a child's
 * heap, which /proc does not show.
 */
import { writeFileSync } from 'node:fs';

const file = process.env.HOOKLINE_MEMORY_PROBE;
if (file) {
  const write = () => {
    const { rss, heapUsed, heapTotal } = process.memoryUsage();
    writeFileSync(file, JSON.stringify({ rss, heapUsed, heapTotal, at: Date.now() }));
  };
  write();
  setInterval(write, 1000).unref();
}
