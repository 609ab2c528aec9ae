/** `LAYERBOX_TRACE=1`: phase timings on stderr (milliseconds since the process started). */
const on = !!process.env.LAYERBOX_TRACE;
export function trace(what: string): void {
  if (on) process.stderr.write(`[trace ${performance.now().toFixed(1)}ms] ${what}\n`);
}
