// PGREVOKE_TRACE=1: milestones with the time since process start, on stderr. For measuring the
// critical path to containment (see BENCHMARKS.md); silent otherwise.
const on = Boolean(process.env.PGREVOKE_TRACE);

export function trace(label: string): void {
  if (on) process.stderr.write(`trace ${(process.uptime() * 1000).toFixed(1)} ms ${label}\n`);
}
