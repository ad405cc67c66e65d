// Copy BokehJS (the core bundle, bokeh.min.js) from the installed bokeh Python package into the
// built extension as static/bokeh-<version>.min.js, so the kernel's bokeh version picks its own copy
// (src/bokehjs.ts). Python: $PYTHON, else python3 on PATH. Without bokeh there, the extension ships
// no copy and notebook viewers load the kernel's inline BokehJS instead (a warning, not a failure).
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const out = path.resolve(__dirname, '..', '..', 'lvsal_nb', 'labextension', 'static');
const py = process.env.PYTHON || 'python3';
let info;
try {
  const code =
    'import bokeh, json, pathlib; p = pathlib.Path(bokeh.__file__).parent / "server/static/js/bokeh.min.js"; ' +
    'print(json.dumps({"version": bokeh.__version__, "path": str(p)}))';
  info = JSON.parse(execFileSync(py, ['-c', code], { encoding: 'utf8' }));
} catch (err) {
  console.warn(`copy-bokehjs: no bokeh in ${py} (${err.message.split('\n')[0]}); the extension ships no BokehJS`);
  process.exit(0);
}
fs.mkdirSync(out, { recursive: true });
for (const f of fs.readdirSync(out)) {
  if (/^bokeh-.*\.min\.js$/.test(f)) {
    fs.rmSync(path.join(out, f)); // one version: the one of the kernel's environment
  }
}
const dest = path.join(out, `bokeh-${info.version}.min.js`);
fs.copyFileSync(info.path, dest);
console.log(`copy-bokehjs: ${dest} (${fs.statSync(dest).size} bytes)`);
