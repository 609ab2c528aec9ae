/**
 * The `layerbox` executable: the CLI front, with the commands that compose it with the other
 * fronts (`explore`: the ui; `serve`: the Engine API and the ui). The one module allowed to
 * import several fronts.
 */
import { main as cliMain } from '../cli/main.js';
import { exploreCmd } from './explore.js';
import { serveCmd } from './serve.js';

export async function main(argv: string[]): Promise<void> {
  await cliMain(argv, [exploreCmd, serveCmd]);
}
