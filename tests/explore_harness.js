// For tests/test_explore.py: run the Explore page's own functions (explore.js) under Node, outside a browser.
// node explore_harness.js EXPLORE_JS DATA_JS REQUEST_JSON  ->  JSON on stdout
// REQUEST_JSON: {"forward": true} runs every shipped image (intact, and each unit silenced to zero and to its
// mean); {"rasters": [{"height": h, "width": w, "ink": [...]}]} runs the drawing preprocessing on each.
"use strict";
const fs = require("fs");
const vm = require("vm");

const [exploreJs, dataJs, requestJson] = process.argv.slice(2);
const sandbox = { atob: globalThis.atob };
sandbox.window = sandbox;
vm.createContext(sandbox);
vm.runInContext(fs.readFileSync(dataJs, "utf8"), sandbox, { filename: dataJs });
vm.runInContext(fs.readFileSync(exploreJs, "utf8"), sandbox, { filename: exploreJs });
const explore = sandbox.NuKerasExplore;
const request = JSON.parse(fs.readFileSync(requestJson, "utf8"));
const answer = {};

if (request.forward) {
  const net = explore.loadNetwork(sandbox.NU_KERAS_EXPLORE);
  const images = explore.loadImages(sandbox.NU_KERAS_EXPLORE);
  const run = (x, silenced, mode) => {
    const r = explore.forward(net, x, silenced, mode);
    return { hidden: Array.from(r.hidden), probabilities: Array.from(r.probabilities), predicted: r.predicted };
  };
  answer.intact = [];
  answer.silenced = { zero: [], mean: [] };
  for (let row = 0; row < images.count; row++) {
    const x = explore.imageInput(images, row);
    answer.intact.push(run(x));
    for (const mode of ["zero", "mean"]) {
      const perUnit = [];
      for (let unit = 0; unit < net.units; unit++) {
        const silenced = new Array(net.units).fill(false);
        silenced[unit] = true;
        perUnit.push(run(x, silenced, mode));
      }
      answer.silenced[mode].push(perUnit);
    }
  }
}
if (request.rasters) {
  answer.preprocessed = request.rasters.map((r) => Array.from(explore.preprocess(r.ink, r.height, r.width)));
}
process.stdout.write(JSON.stringify(answer));
