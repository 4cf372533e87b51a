// The Explore page: this run's 784-10-10 network, computed in the browser on a drawn digit or a test image.
//
// A classic script with no dependency and no request: from file:// Chromium refuses ES modules and fetch(),
// so the network arrives as a global, window.NU_KERAS_EXPLORE, assigned by the generated explore-data.js
// (see nu_keras/explore.py). The pure functions (decoding, forward pass, preprocessing) are exported on
// window.NuKerasExplore so the tests can hold them to numpy and Keras; the page wiring starts only when
// the page's elements are present.
(function (root) {
  "use strict";

  var FRAME = 28; // MNIST frame
  var BOX = 20; // MNIST digits are scaled to fit 20x20 inside it
  var INK_THRESHOLD = 0.05; // fainter pixels are the brush's soft edge: not part of the digit's extent
  var TIE_MARGIN = 1e-9; // halves round up even when the last bit of a sum says 0.4999999999

  // Round to nearest, halves up: a symmetric drawing puts its centre of mass exactly on a half pixel, and
  // both implementations must pick the same side whatever their summation order (nu_keras.explore too).
  function roundHalfUp(value) { return Math.floor(value + 0.5 + TIE_MARGIN); }

  // ------------------------------------------------------------------------------------- data decoding

  function decodeBase64(text) {
    var binary = root.atob(text);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }

  function decodeFloat32(text) {
    // little-endian float32, as numpy's "<f4" wrote them
    var bytes = decodeBase64(text);
    var view = new DataView(bytes.buffer);
    var values = new Float32Array(bytes.length / 4);
    for (var i = 0; i < values.length; i++) values[i] = view.getFloat32(4 * i, true);
    return values;
  }

  function loadNetwork(data) {
    return {
      inputs: data.inputs,
      units: data.units,
      classes: data.classes,
      w1: decodeFloat32(data.hidden_kernel), // pixel i, unit u at i * units + u
      b1: decodeFloat32(data.hidden_bias),
      w2: decodeFloat32(data.output_kernel), // unit u, class k at u * classes + k
      b2: decodeFloat32(data.output_bias),
      unitMeans: decodeFloat32(data.unit_means),
      preferredUnit: data.preferred_unit, // per digit: the unit with the largest mean activation on it
      dominantUnit: data.dominant_unit, // per digit: the unit most active on > threshold of it, or null
      dominanceThreshold: data.dominance_threshold,
    };
  }

  function loadImages(data) {
    return {
      pixels: decodeBase64(data.images), // row r, pixel i at r * 784 + i
      indices: data.indices, // test-set index of each row
      labels: data.labels,
      count: data.indices.length,
    };
  }

  function imageInput(images, row) {
    // uint8 pixels / 255 in float32, exactly as nu_keras.model.scale feeds Keras
    var x = new Float32Array(FRAME * FRAME);
    for (var i = 0; i < x.length; i++) x[i] = images.pixels[row * x.length + i] / 255;
    return x;
  }

  // -------------------------------------------------------------------------------------- forward pass

  // hidden = relu(x W1 + b1); a silenced unit is replaced by 0 or by its test-set mean ("mean" mode);
  // probabilities = softmax(hidden W2 + b2).
  function forward(net, x, silenced, mode) {
    var pre = new Float64Array(net.units);
    var hidden = new Float64Array(net.units);
    var logits = new Float64Array(net.classes);
    var probabilities = new Float64Array(net.classes);
    var u, k, i;
    for (u = 0; u < net.units; u++) pre[u] = net.b1[u];
    for (i = 0; i < net.inputs; i++) {
      if (x[i] === 0) continue;
      for (u = 0; u < net.units; u++) pre[u] += x[i] * net.w1[i * net.units + u];
    }
    for (u = 0; u < net.units; u++) {
      hidden[u] = Math.max(pre[u], 0);
      if (silenced && silenced[u]) hidden[u] = mode === "mean" ? net.unitMeans[u] : 0;
    }
    for (k = 0; k < net.classes; k++) {
      logits[k] = net.b2[k];
      for (u = 0; u < net.units; u++) logits[k] += hidden[u] * net.w2[u * net.classes + k];
    }
    var top = Math.max.apply(null, logits);
    var total = 0;
    for (k = 0; k < net.classes; k++) total += probabilities[k] = Math.exp(logits[k] - top);
    var predicted = 0;
    for (k = 0; k < net.classes; k++) {
      probabilities[k] /= total;
      if (logits[k] > logits[predicted]) predicted = k;
    }
    return { pre: pre, hidden: hidden, logits: logits, probabilities: probabilities, predicted: predicted };
  }

  // ------------------------------------------------------------------------------------- preprocessing

  // (target x size) box-filter resampling: output pixel j averages the input span [j, j + 1) * size / target.
  function areaWeights(size, target) {
    var step = size / target;
    var weights = new Float64Array(target * size);
    for (var j = 0; j < target; j++) {
      var start = j * step;
      for (var i = 0; i < size; i++) {
        var overlap = Math.min(start + step, i + 1) - Math.max(start, i);
        if (overlap > 0) weights[j * size + i] = overlap / step;
      }
    }
    return weights;
  }

  // A drawn raster (height x width, ink in [0, 1], row-major) as the 28x28 network input, as MNIST was
  // made: crop to the ink, box-resample so the longer side is 20 px (aspect kept), stretch to a peak of 1,
  // and shift whole pixels so the centre of mass sits mid-frame (never past the frame's edge).
  // nu_keras.explore.preprocess_drawing is the reference; the tests compare the two.
  function preprocess(ink, height, width) {
    var out = new Float64Array(FRAME * FRAME);
    var top = height, bottom = -1, left = width, right = -1;
    var x, y, i, j;
    for (y = 0; y < height; y++) {
      for (x = 0; x < width; x++) {
        if (ink[y * width + x] >= INK_THRESHOLD) {
          top = Math.min(top, y); bottom = Math.max(bottom, y);
          left = Math.min(left, x); right = Math.max(right, x);
        }
      }
    }
    if (bottom < 0) return out;
    var h = bottom - top + 1, w = right - left + 1;
    var scale = BOX / Math.max(h, w);
    var smallH = Math.max(1, roundHalfUp(h * scale)), smallW = Math.max(1, roundHalfUp(w * scale));
    var rowWeights = areaWeights(h, smallH), colWeights = areaWeights(w, smallW);
    var rows = new Float64Array(smallH * w); // rowWeights @ crop
    for (j = 0; j < smallH; j++) {
      for (i = 0; i < h; i++) {
        var weight = rowWeights[j * h + i];
        if (weight === 0) continue;
        for (x = 0; x < w; x++) {
          var value = Math.min(Math.max(ink[(top + i) * width + left + x], 0), 1);
          rows[j * w + x] += weight * value;
        }
      }
    }
    var small = new Float64Array(smallH * smallW); // (rowWeights @ crop) @ colWeights^T
    var peak = 0;
    for (j = 0; j < smallH; j++) {
      for (i = 0; i < smallW; i++) {
        var sum = 0;
        for (x = 0; x < w; x++) sum += rows[j * w + x] * colWeights[i * w + x];
        small[j * smallW + i] = sum;
        peak = Math.max(peak, sum);
      }
    }
    var total = 0, centreY = 0, centreX = 0;
    for (j = 0; j < smallH; j++) {
      for (i = 0; i < smallW; i++) {
        var v = (small[j * smallW + i] /= peak);
        total += v; centreY += v * (j + 0.5); centreX += v * (i + 0.5);
      }
    }
    var offsetY = Math.min(Math.max(roundHalfUp(FRAME / 2 - centreY / total), 0), FRAME - smallH);
    var offsetX = Math.min(Math.max(roundHalfUp(FRAME / 2 - centreX / total), 0), FRAME - smallW);
    for (j = 0; j < smallH; j++) {
      for (i = 0; i < smallW; i++) out[(offsetY + j) * FRAME + offsetX + i] = small[j * smallW + i];
    }
    return out;
  }

  // ---------------------------------------------------------------------------------------- the page

  var BLUE = [33, 102, 172], RED = [178, 24, 43]; // ends of RdBu, the site's diverging scale

  function divergingColour(t) {
    // t in [-1, 1]: blue below zero, white at zero, red above
    var end = t < 0 ? BLUE : RED, a = Math.min(Math.abs(t), 1);
    return [0, 1, 2].map(function (c) { return Math.round(255 + (end[c] - 255) * a); });
  }

  function paintGrid(canvas, values, colour) {
    var context = canvas.getContext("2d");
    var image = context.createImageData(FRAME, FRAME);
    for (var i = 0; i < FRAME * FRAME; i++) {
      var rgb = colour(values[i]);
      image.data.set([rgb[0], rgb[1], rgb[2], 255], 4 * i);
    }
    context.putImageData(image, 0, 0);
  }

  function ink(value) { var g = Math.round(255 * (1 - value)); return [g, g, g]; }

  function fixed(value, digits) { return value.toFixed(digits).replace("-", "\u2212"); }

  function element(tag, attributes, text) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) { node.setAttribute(name, attributes[name]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function start(data) {
    var net = loadNetwork(data), images = loadImages(data);
    var $ = function (id) { return document.getElementById(id); };
    var canvas = $("nk-canvas"), pen = canvas.getContext("2d", { willReadFrequently: true });
    var state = { row: null, input: new Float64Array(FRAME * FRAME), silenced: [], mode: "zero", unit: null,
                  unitChosen: false, result: null, drawing: false, drawn: false, lastFragment: null, pending: false };
    for (var u = 0; u < net.units; u++) state.silenced.push(false);
    var rowOfIndex = Object.create(null); // test-set index -> row of the shipped images
    images.indices.forEach(function (index, row) { rowOfIndex[index] = row; });
    var predictions = [], scaleMax = 1e-9; // one fixed bar scale: the largest activation over the shipped images
    for (var r = 0; r < images.count; r++) {
      var shipped = forward(net, imageInput(images, r));
      predictions.push(shipped.predicted);
      scaleMax = Math.max(scaleMax, Math.max.apply(null, shipped.hidden));
    }

    // ---- build the rows of bars
    var outputRows = [], unitRows = [];
    for (var k = 0; k < net.classes; k++) {
      var row = element("div", { "class": "nk-row nk-output-row", id: "nk-output-" + k });
      row.append(element("span", { "class": "nk-name" }, "digit " + k));
      var track = element("span", { "class": "nk-track", "aria-hidden": "true" });
      var fill = element("span", { "class": "nk-fill" });
      track.append(fill);
      var value = element("span", { "class": "nk-value" });
      row.append(track, value);
      $("nk-outputs").append(row);
      outputRows.push({ row: row, fill: fill, value: value });
    }
    for (u = 0; u < net.units; u++) {
      var unitRow = element("div", { "class": "nk-row nk-unit-row", id: "nk-unit-" + u });
      var radio = element("input", { type: "radio", name: "nk-inspect", id: "nk-inspect-" + u, value: String(u) });
      var radioLabel = element("label", { "for": "nk-inspect-" + u, "class": "nk-name" }, "unit " + u);
      var bar = element("button", { type: "button", "class": "nk-track nk-bar", id: "nk-bar-" + u,
                                    "aria-pressed": "false", "aria-label": "Silence unit " + u });
      var barFill = element("span", { "class": "nk-fill" });
      bar.append(barFill);
      var unitValue = element("span", { "class": "nk-value" });
      var box = element("input", { type: "checkbox", id: "nk-silence-" + u });
      var boxLabel = element("label", { "for": "nk-silence-" + u, "class": "nk-silence" }, "silenced");
      boxLabel.prepend(element("span", { "class": "nk-hidden-label" }, "unit " + u + " ")); // for screen readers
      var mark = element("span", { "class": "nk-mark" });
      unitRow.append(radio, radioLabel, bar, unitValue, box, boxLabel, mark);
      $("nk-units").append(unitRow);
      unitRows.push({ row: unitRow, radio: radio, bar: bar, fill: barFill, value: unitValue, box: box, mark: mark });
      (function (unit) {
        radio.addEventListener("change", function () { state.unit = unit; state.unitChosen = true; update(true); });
        bar.addEventListener("click", function () { toggle(unit); });
        box.addEventListener("change", function () { toggle(unit, box.checked); });
      })(u);
    }

    // ---- the picker
    var digitSelect = $("nk-digit"), wrongSelect = $("nk-wrong");
    var wrongRows = [];
    for (r = 0; r < images.count; r++) if (predictions[r] !== images.labels[r]) wrongRows.push(r);
    wrongRows.forEach(function (row) {
      wrongSelect.append(element("option", { value: String(row) }, "test image " + images.indices[row] +
        ": a " + images.labels[row] + " taken for a " + predictions[row]));
    });
    $("nk-wrong-count").textContent = String(wrongRows.length);
    var nextOfDigit = {};
    $("nk-next").addEventListener("click", function () {
      var digit = Number(digitSelect.value), rows = [];
      for (var i = 0; i < images.count; i++) if (images.labels[i] === digit) rows.push(i);
      nextOfDigit[digit] = ((nextOfDigit[digit] === undefined ? -1 : nextOfDigit[digit]) + 1) % rows.length;
      showImage(rows[nextOfDigit[digit]]);
    });
    $("nk-random").addEventListener("click", function () { showImage(Math.floor(Math.random() * images.count)); });
    wrongSelect.addEventListener("change", function () { if (wrongSelect.value !== "") showImage(Number(wrongSelect.value)); });
    $("nk-clear").addEventListener("click", function () { clearDrawing(); update(true); });
    $("nk-reset").addEventListener("click", function () {
      for (var i = 0; i < net.units; i++) state.silenced[i] = false;
      update(true);
    });
    document.querySelectorAll("input[name=nk-mode]").forEach(function (radio) {
      radio.addEventListener("change", function () { if (radio.checked) { state.mode = radio.value; update(true); } });
    });

    // ---- drawing with mouse, pen or finger (pointer events)
    // The canvas shows the strokes as drawn. The network gets them redrawn so that the digit's longer side
    // spans DRAWN_EXTENT pixels with the same brush: a digit drawn small would otherwise reach the 20x20 box
    // with strokes several pixels thick, unlike any MNIST digit. That raster then goes through preprocess().
    var DRAWN_EXTENT = 200, BRUSH = canvas.width / 12, SOFTNESS = canvas.width / 40;
    var redrawn = document.createElement("canvas");
    redrawn.width = redrawn.height = canvas.width;
    var redrawnPen = redrawn.getContext("2d", { willReadFrequently: true });
    state.strokes = [];

    function inkStyle(context) {
      context.lineWidth = BRUSH; context.lineCap = "round"; context.lineJoin = "round";
      context.strokeStyle = "#000"; context.shadowColor = "#000"; context.shadowBlur = SOFTNESS;
    }
    function strokeLine(context, from, to) {
      context.beginPath(); context.moveTo(from[0], from[1]); context.lineTo(to[0] + 0.01, to[1]); context.stroke();
    }
    function clearDrawing() {
      pen.clearRect(0, 0, canvas.width, canvas.height);
      state.row = null; state.drawn = false; state.strokes = [];
      state.input = new Float64Array(FRAME * FRAME);
    }
    function point(event) {
      var box = canvas.getBoundingClientRect();
      return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
    }
    canvas.addEventListener("pointerdown", function (event) {
      event.preventDefault();
      if (state.row !== null) clearDrawing(); // a shown test image gives way to a fresh drawing
      try { canvas.setPointerCapture(event.pointerId); } catch (error) { /* a synthetic pointer: no capture */ }
      state.drawing = true; state.drawn = true;
      var p = point(event);
      state.strokes.push([p]);
      inkStyle(pen);
      strokeLine(pen, p, p);
      scheduleDrawnUpdate();
    });
    canvas.addEventListener("pointermove", function (event) {
      if (!state.drawing) return;
      var stroke = state.strokes[state.strokes.length - 1], p = point(event);
      strokeLine(pen, stroke[stroke.length - 1], p);
      stroke.push(p);
      scheduleDrawnUpdate();
    });
    function endStroke() {
      if (!state.drawing) return;
      state.drawing = false;
      readDrawing(); update(true); // the stroke is done: announce it
    }
    canvas.addEventListener("pointerup", endStroke);
    canvas.addEventListener("pointercancel", endStroke);

    function scheduleDrawnUpdate() {
      if (state.pending) return;
      state.pending = true;
      root.requestAnimationFrame(function () { state.pending = false; readDrawing(); update(false); });
    }
    function readDrawing() {
      var all = [].concat.apply([], state.strokes);
      var xs = all.map(function (p) { return p[0]; }), ys = all.map(function (p) { return p[1]; });
      var left = Math.min.apply(null, xs), top = Math.min.apply(null, ys);
      var extent = Math.max(Math.max.apply(null, xs) - left, Math.max.apply(null, ys) - top);
      var scale = DRAWN_EXTENT / Math.max(extent, DRAWN_EXTENT / 5); // a dot is not blown up without limit
      var margin = (redrawn.width - DRAWN_EXTENT) / 2;
      var at = function (p) { return [margin + (p[0] - left) * scale, margin + (p[1] - top) * scale]; };
      redrawnPen.clearRect(0, 0, redrawn.width, redrawn.height);
      inkStyle(redrawnPen);
      state.strokes.forEach(function (stroke) {
        for (var i = 0; i < stroke.length; i++) strokeLine(redrawnPen, at(stroke[Math.max(i - 1, 0)]), at(stroke[i]));
      });
      var pixels = redrawnPen.getImageData(0, 0, redrawn.width, redrawn.height).data;
      var ink = new Float64Array(redrawn.width * redrawn.height);
      for (var i = 0; i < ink.length; i++) ink[i] = pixels[4 * i + 3] / 255; // ink is the alpha channel
      state.input = preprocess(ink, redrawn.height, redrawn.width);
    }
    function showImage(row) {
      state.row = row; state.drawn = false;
      state.input = imageInput(images, row);
      var small = document.createElement("canvas");
      small.width = small.height = FRAME;
      paintGrid(small, state.input, ink);
      pen.save();
      pen.imageSmoothingEnabled = false;
      pen.clearRect(0, 0, canvas.width, canvas.height);
      pen.drawImage(small, 0, 0, canvas.width, canvas.height);
      pen.restore();
      update(true);
    }
    function toggle(unit, on) {
      state.silenced[unit] = on === undefined ? !state.silenced[unit] : on;
      update(true);
    }

    // ---- show the network's response
    function update(announce) {
      var result = state.result = forward(net, state.input, state.silenced, state.mode);
      var blank = state.row === null && !state.drawn;
      var preferred = net.preferredUnit[result.predicted], dominant = net.dominantUnit[result.predicted];
      if (!state.unitChosen) state.unit = preferred; // until the reader picks one, follow the prediction
      paintGrid($("nk-input"), state.input, ink);
      outputRows.forEach(function (out, k) {
        var p = result.probabilities[k];
        out.fill.style.width = (100 * p).toFixed(2) + "%";
        out.value.textContent = fixed(100 * p, 2) + " %";
        out.value.setAttribute("data-value", String(p));
        out.row.classList.toggle("nk-predicted", k === result.predicted);
      });
      unitRows.forEach(function (row, unit) {
        var a = result.hidden[unit];
        row.fill.style.width = Math.min(100, 100 * a / scaleMax).toFixed(2) + "%";
        row.value.textContent = fixed(a, 3);
        row.value.setAttribute("data-value", String(a));
        row.bar.setAttribute("aria-pressed", String(state.silenced[unit]));
        row.box.checked = state.silenced[unit];
        row.row.classList.toggle("nk-silenced", state.silenced[unit]);
        row.radio.checked = unit === state.unit;
        row.row.classList.toggle("nk-preferred", unit === preferred);
        var marks = [];
        if (unit === preferred) marks.push("\u2605 preferred unit of digit " + result.predicted);
        if (unit === dominant) marks.push("\u25c6 dominant unit of digit " + result.predicted);
        row.mark.textContent = marks.join(" \u00b7 ");
      });
      $("nk-predicted").textContent = blank ? "\u2013" : String(result.predicted);
      $("nk-predicted").setAttribute("data-value", blank ? "" : String(result.predicted));
      $("nk-source").textContent = state.row !== null
        ? "Test image " + images.indices[state.row] + ", true label " + images.labels[state.row] +
          (images.labels[state.row] === result.predicted ? " (predicted correctly)" : " (misclassified)")
        : state.drawn ? "Your drawing, prepared as MNIST digits are (right)." : "Draw a digit, or pick a test image.";
      showUnit(state.unit);
      writeFragment();
      if (announce) {
        var silenced = state.silenced.map(function (on, unit) { return on ? unit : -1; }).filter(function (unit) { return unit >= 0; });
        $("nk-live").textContent = blank ? "The drawing is empty." :
          "Predicted digit " + result.predicted + ", probability " + fixed(100 * result.probabilities[result.predicted], 1) +
          " %. Unit " + state.unit + " activation " + fixed(result.hidden[state.unit], 2) + ". " +
          (silenced.length ? "Silenced units (" + (state.mode === "mean" ? "set to their mean" : "set to zero") + "): " + silenced.join(", ") + "." : "No unit silenced.");
      }
    }

    function showUnit(unit) {
      var weights = new Float64Array(FRAME * FRAME), contribution = new Float64Array(FRAME * FRAME);
      var wMax = 1e-12, cMax = 1e-12, sum = 0;
      for (var i = 0; i < weights.length; i++) {
        weights[i] = net.w1[i * net.units + unit];
        contribution[i] = weights[i] * state.input[i];
        sum += contribution[i];
        wMax = Math.max(wMax, Math.abs(weights[i]));
        cMax = Math.max(cMax, Math.abs(contribution[i]));
      }
      paintGrid($("nk-weights"), weights, function (w) { return divergingColour(w / wMax); });
      paintGrid($("nk-contribution"), contribution, function (c) { return divergingColour(c / cMax); });
      $("nk-unit-title").textContent = "Unit " + unit + ": why it fires";
      var pre = sum + net.b1[unit];
      var note = state.silenced[unit] ? " It is silenced: the output layer receives " +
        fixed(state.mode === "mean" ? net.unitMeans[unit] : 0, 3) + " instead." : "";
      $("nk-unit-sum").textContent = "Sum of w \u2299 x = " + fixed(sum, 3) + ", bias = " + fixed(net.b1[unit], 3) +
        ", pre-activation = " + fixed(pre, 3) + ", activation relu = " + fixed(Math.max(pre, 0), 3) + "." + note;
      $("nk-weights-scale").textContent = "\u00b1" + fixed(wMax, 3);
      $("nk-contribution-scale").textContent = "\u00b1" + fixed(cMax, 3);
    }

    // ---- the view in the URL fragment: #image=1234&unit=3&silenced=2,5&mode=mean
    function fragment() {
      var parts = [];
      if (state.row !== null) parts.push("image=" + images.indices[state.row]);
      parts.push("unit=" + state.unit);
      var silenced = state.silenced.map(function (on, unit) { return on ? unit : -1; }).filter(function (unit) { return unit >= 0; });
      if (silenced.length) parts.push("silenced=" + silenced.join(","));
      if (state.mode !== "zero") parts.push("mode=" + state.mode);
      return parts.join("&");
    }
    function writeFragment() {
      var text = fragment();
      if (text === state.lastFragment) return;
      state.lastFragment = text;
      try {
        root.history.replaceState(null, "", "#" + text);
      } catch (error) { // some browsers refuse history changes on file:// pages
        root.location.replace("#" + text);
      }
    }
    function readFragment() {
      var text = root.location.hash.replace(/^#/, "");
      if (text === state.lastFragment) return;
      var params = Object.create(null); // whatever a link holds: only known keys and numbers are used
      text.split("&").forEach(function (pair) {
        var at = pair.indexOf("=");
        if (at > 0) params[pair.slice(0, at)] = pair.slice(at + 1);
      });
      var unit = parseInt(params.unit, 10);
      state.unitChosen = unit >= 0 && unit < net.units;
      if (state.unitChosen) state.unit = unit;
      state.mode = params.mode === "mean" ? "mean" : "zero";
      document.querySelectorAll("input[name=nk-mode]").forEach(function (radio) { radio.checked = radio.value === state.mode; });
      for (var i = 0; i < net.units; i++) state.silenced[i] = false;
      (params.silenced || "").split(",").forEach(function (part) {
        var s = parseInt(part, 10);
        if (s >= 0 && s < net.units) state.silenced[s] = true;
      });
      var missing = "";
      if (params.image !== undefined) {
        var row = /^\d+$/.test(params.image) ? rowOfIndex[Number(params.image)] : undefined;
        if (row !== undefined) { showImage(row); return; }
        missing = "Test image " + params.image.slice(0, 12) + " is not among the images this page carries. ";
      }
      if (state.row === null && !state.drawn) showImage(0);
      else update(true);
      if (missing) $("nk-source").textContent = missing + $("nk-source").textContent;
    }
    root.addEventListener("hashchange", readFragment);
    $("nk-app").hidden = false;
    $("nk-noscript").hidden = true;
    readFragment();
  }

  root.NuKerasExplore = {
    decodeBase64: decodeBase64,
    decodeFloat32: decodeFloat32,
    loadNetwork: loadNetwork,
    loadImages: loadImages,
    imageInput: imageInput,
    forward: forward,
    areaWeights: areaWeights,
    preprocess: preprocess,
  };

  if (root.document && root.document.getElementById("nk-app") && root.NU_KERAS_EXPLORE) {
    start(root.NU_KERAS_EXPLORE);
  }
})(typeof window !== "undefined" ? window : globalThis);
