// The package's version, from package.json: the sources read it at run time, and the esbuild
// bundle carries it inline (the .deb ships no package.json).
import pkg from '../package.json' with { type: 'json' };

// `0.1.0`: what `dstack-supervisor --version` prints and `_supervisor.json` records.
export const VERSION: string = pkg.version;
