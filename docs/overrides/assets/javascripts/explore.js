// The Explore page: this run's network, a stack of Dense layers, computed in the browser on a drawn digit or a
// test image.
//
// A classic script with no dependency and no request: from file:// Chromium refuses ES modules and fetch(),
// so the network arrives as a global, window.NU_KERAS_EXPLORE, assigned by the generated explore-data.js
// (see nu_keras/explore.py). The pure functions (decoding, forward pass, preprocessing) are exported on
// window.NuKerasExplore so the tests can hold them to numpy and Keras; the page wiring starts only when
// the page's elements are present. Class and layer names come from the reader's data: they reach the page
// through textContent only, never as HTML.
(function (root) {
  "use strict";

  var FRAME = 28; // MNIST frame
  var BOX = 20; // MNIST digits are scaled to fit 20x20 inside it
  var INK_THRESHOLD = 0.05; // fainter pixels are the brush's soft edge: not part of the digit's extent
  var TIE_MARGIN = 1e-9; // halves round up even when the last bit of a sum says 0.4999999999
  var SCROLL_UNITS = 16; // more units than this: their list scrolls within its panel

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

  function loadLayer(layer) {
    return {
      name: layer.name, // untrusted text
      inputs: layer.inputs,
      units: layer.units,
      activation: layer.activation,
      kernel: decodeFloat32(layer.kernel), // input i, unit u at i * units + u
      bias: decodeFloat32(layer.bias),
    };
  }

  function loadNetwork(data) {
    var layers = data.layers.map(loadLayer);
    return {
      layers: layers,
      readout: data.readout, // the layer whose units the page lists, silences and inspects
      inputs: layers[0].inputs,
      units: layers[data.readout].units,
      classes: layers[layers.length - 1].units,
      classNames: data.class_names, // untrusted text
      unitMeans: decodeFloat32(data.unit_means),
      preferredUnit: data.preferred_unit, // per class: the unit with the largest mean activation on it
      dominantUnit: data.dominant_unit, // per class: the unit most active on > threshold of it, or null
      dominanceThreshold: data.dominance_threshold,
    };
  }

  function loadImages(data) {
    var shape = data.image_shape; // (height, width, channels)
    return {
      pixels: data.pixel_dtype === "u1" ? decodeBase64(data.images) : decodeFloat32(data.images),
      unitRange: data.pixel_dtype === "u1" ? 1 / 255 : 1, // stored pixels to [0, 1], for showing them
      scale: data.pixel_scale, // stored pixels to the network's input
      height: shape[0],
      width: shape[1],
      channels: shape[2],
      size: shape[0] * shape[1] * shape[2], // row r, pixel (y, x, c) at r * size + (y * width + x) * channels + c
      indices: data.indices, // test-set index of each row
      labels: data.labels,
      count: data.indices.length,
    };
  }

  // The drawing pad and its MNIST preprocessing only fit MNIST-shaped images: 28x28, one channel.
  function drawable(images) { return images.height === FRAME && images.width === FRAME && images.channels === 1; }

  function imageInput(images, row) {
    // stored pixels * pixel_scale, rounded once to float32 by the store: nu_keras.explore.model_input
    // (for a scale of 1/255 exactly uint8 / 255, as nu_keras.model.scale feeds Keras)
    var x = new Float32Array(images.size);
    for (var i = 0; i < x.length; i++) x[i] = images.pixels[row * x.length + i] * images.scale;
    return x;
  }

  // -------------------------------------------------------------------------------------- forward pass

  // pre = a W + b, in float64 over the float32 weights; zero inputs are skipped (most pixels are blank).
  function dense(layer, a) {
    var n = layer.units, pre = new Float64Array(n), u;
    for (u = 0; u < n; u++) pre[u] = layer.bias[u];
    for (var i = 0; i < layer.inputs; i++) {
      if (a[i] === 0) continue;
      for (u = 0; u < n; u++) pre[u] += a[i] * layer.kernel[i * n + u];
    }
    return pre;
  }

  function softmax(logits) {
    var top = Math.max.apply(null, logits), total = 0, k;
    var out = new Float64Array(logits.length);
    for (k = 0; k < logits.length; k++) total += out[k] = Math.exp(logits[k] - top);
    for (k = 0; k < logits.length; k++) out[k] /= total;
    return out;
  }

  function activate(name, pre) {
    if (name === "softmax") return softmax(pre);
    var out = new Float64Array(pre.length);
    for (var i = 0; i < pre.length; i++) {
      var p = pre[i];
      out[i] = name === "relu" ? Math.max(p, 0) : name === "sigmoid" ? 1 / (1 + Math.exp(-p)) :
        name === "tanh" ? Math.tanh(p) : p;
    }
    return out;
  }

  // Every layer but the last: a = activation(a W + b). At the readout layer a silenced unit passes on 0 or
  // its test-set mean ("mean" mode) instead. The last layer's pre-activations are the logits, and the page
  // shows their softmax whether that layer's activation is softmax or linear: the argmax is the same.
  // Returns the readout layer's input, pre-activations, activations (`active`) and what it passes on
  // (`hidden`, with the silencing), the logits, probabilities and the predicted class.
  function forward(net, x, silenced, mode) {
    var a = x, result = {}, last = net.layers.length - 1;
    for (var l = 0; l < last; l++) {
      var pre = dense(net.layers[l], a), out = activate(net.layers[l].activation, pre);
      if (l === net.readout) {
        result.input = a; result.pre = pre; result.active = out;
        out = Float64Array.from(out);
        for (var u = 0; silenced && u < out.length; u++) {
          if (silenced[u]) out[u] = mode === "mean" ? net.unitMeans[u] : 0;
        }
        result.hidden = out;
      }
      a = out;
    }
    result.logits = dense(net.layers[last], a);
    result.probabilities = softmax(result.logits);
    result.predicted = 0;
    for (var k = 0; k < net.classes; k++) if (result.logits[k] > result.logits[result.predicted]) result.predicted = k;
    return result;
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

  // Paint one value per pixel (values[i] for pixel i of a height x width grid) with colour(value) -> rgb.
  function paintGrid(canvas, values, colour, height, width) {
    canvas.width = width; canvas.height = height;
    var context = canvas.getContext("2d");
    var image = context.createImageData(width, height);
    for (var i = 0; i < width * height; i++) {
      var rgb = colour(values, i);
      image.data.set([rgb[0], rgb[1], rgb[2], 255], 4 * i);
    }
    context.putImageData(image, 0, 0);
  }

  function clamp01(value) { return Math.min(Math.max(value, 0), 1); }

  // Pixels in [0, 1] with `channels` values each: grey as ink (dark on white, as the site shows digits),
  // three channels in colour, any other count as the grey of their mean.
  function pixelColour(channels) {
    return function (values, i) {
      if (channels === 3) {
        return [0, 1, 2].map(function (c) { return Math.round(255 * clamp01(values[3 * i + c])); });
      }
      var sum = 0;
      for (var c = 0; c < channels; c++) sum += values[channels * i + c];
      var g = Math.round(255 * (1 - clamp01(sum / channels)));
      return [g, g, g];
    };
  }

  function fixed(value, digits) { return value.toFixed(digits).replace("-", "\u2212"); }

  function element(tag, attributes, text) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) { node.setAttribute(name, attributes[name]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function selected(flags) {
    return flags.map(function (on, unit) { return on ? unit : -1; }).filter(function (unit) { return unit >= 0; });
  }

  function start(data) {
    var net = loadNetwork(data), images = loadImages(data);
    var $ = function (id) { return document.getElementById(id); };
    var H = images.height, W = images.width, C = images.channels, size = images.size;
    var canvas = $("nk-canvas"), canDraw = Boolean(canvas) && drawable(images);
    if (canvas && !canDraw) $("nk-draw").hidden = true; // the template offers no pad for such images anyway
    var pen = canDraw ? canvas.getContext("2d", { willReadFrequently: true }) : null;
    var pixelMaps = Boolean($("nk-weights")) && net.readout === 0 && C === 1; // the unit's weights read pixels
    var state = { row: null, input: new Float32Array(size), shown: new Float64Array(size), silenced: [], mode: "zero",
                  unit: null, shownUnit: null, unitChosen: false, result: null, drawing: false, drawn: false, lastFragment: null,
                  pending: false };
    for (var u = 0; u < net.units; u++) state.silenced.push(false);
    var rowOfIndex = Object.create(null); // test-set index -> row of the shipped images
    images.indices.forEach(function (index, row) { rowOfIndex[index] = row; });
    var predictions = [], scaleMax = 1e-9; // one fixed bar scale: the largest |activation| over the shipped images
    for (var r = 0; r < images.count; r++) {
      var shipped = forward(net, imageInput(images, r));
      predictions.push(shipped.predicted);
      for (u = 0; u < net.units; u++) scaleMax = Math.max(scaleMax, Math.abs(shipped.hidden[u]));
    }

    // ---- what the page calls each class: "digit 3" on MNIST (the picker's options, worded by the template)
    var classSelect = $("nk-class"), wrongSelect = $("nk-wrong");
    var labels = net.classNames.map(function (name, k) {
      var option = classSelect.querySelector("option[value='" + k + "']");
      return option ? option.textContent : name;
    });
    var longest = Math.max.apply(null, labels.map(function (label) { return label.length; }));
    $("nk-outputs").style.setProperty("--nk-name-width", Math.min(12, Math.max(4.2, 0.62 * longest)) + "em");

    // ---- build the rows of bars
    var outputRows = [], unitRows = [];
    for (var k = 0; k < net.classes; k++) {
      var row = element("div", { "class": "nk-row nk-output-row", id: "nk-output-" + k });
      row.append(element("span", { "class": "nk-name", title: labels[k] }, labels[k]));
      var track = element("span", { "class": "nk-track", "aria-hidden": "true" });
      var fill = element("span", { "class": "nk-fill" });
      track.append(fill);
      var value = element("span", { "class": "nk-value" });
      row.append(track, value);
      $("nk-outputs").append(row);
      outputRows.push({ row: row, fill: fill, value: value });
    }
    $("nk-units").classList.toggle("nk-scroll", net.units > SCROLL_UNITS);
    var unitList = document.createDocumentFragment();
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
      unitList.append(unitRow);
      unitRows.push({ row: unitRow, radio: radio, bar: bar, fill: barFill, value: unitValue, box: box, mark: mark });
      (function (unit) {
        radio.addEventListener("change", function () { state.unit = unit; state.unitChosen = true; update(true); });
        bar.addEventListener("click", function () { toggle(unit); });
        box.addEventListener("change", function () { toggle(unit, box.checked); });
      })(u);
    }
    $("nk-units").append(unitList);

    // ---- the picker
    var wrongRows = [], rowsOfClass = [], nextOfClass = [];
    for (k = 0; k < net.classes; k++) { rowsOfClass.push([]); nextOfClass.push(-1); }
    for (r = 0; r < images.count; r++) {
      rowsOfClass[images.labels[r]].push(r);
      if (predictions[r] !== images.labels[r]) wrongRows.push(r);
    }
    wrongRows.forEach(function (row) {
      wrongSelect.append(element("option", { value: String(row) }, "test image " + images.indices[row] +
        ": " + labels[images.labels[row]] + " taken for " + labels[predictions[row]]));
    });
    $("nk-wrong-count").textContent = String(wrongRows.length);
    $("nk-next").addEventListener("click", function () {
      var c = Number(classSelect.value), rows = rowsOfClass[c];
      if (!rows || !rows.length) { $("nk-source").textContent = "This page carries no test image of " + labels[c] + "."; return; }
      nextOfClass[c] = (nextOfClass[c] + 1) % rows.length;
      showImage(rows[nextOfClass[c]]);
    });
    $("nk-random").addEventListener("click", function () { showImage(Math.floor(Math.random() * images.count)); });
    wrongSelect.addEventListener("change", function () { if (wrongSelect.value !== "") showImage(Number(wrongSelect.value)); });
    $("nk-reset").addEventListener("click", function () {
      for (var i = 0; i < net.units; i++) state.silenced[i] = false;
      update(true);
    });
    document.querySelectorAll("input[name=nk-mode]").forEach(function (radio) {
      radio.addEventListener("change", function () { if (radio.checked) { state.mode = radio.value; update(true); } });
    });

    // ---- drawing with mouse, pen or finger (pointer events), on MNIST-shaped images only
    // The canvas shows the strokes as drawn. The network gets them redrawn so that the digit's longer side
    // spans DRAWN_EXTENT pixels with the same brush: a digit drawn small would otherwise reach the 20x20 box
    // with strokes several pixels thick, unlike any MNIST digit. That raster then goes through preprocess().
    // Ink in [0, 1] stands for stored pixels of full ink times that: 255 for uint8 images, 1 for float ones.
    var inkToInput = images.scale / images.unitRange;
    if (canDraw) startDrawing();

    function startDrawing() {
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
      $("nk-clear").addEventListener("click", function () { clearDrawing(); update(true); });

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
        state.shown = preprocess(ink, redrawn.height, redrawn.width);
        state.input = inkToInput === 1 ? state.shown : state.shown.map(function (v) { return v * inkToInput; });
      }
    }
    function clearDrawing() {
      if (pen) pen.clearRect(0, 0, canvas.width, canvas.height);
      state.row = null; state.drawn = false; state.strokes = [];
      state.input = new Float32Array(size); state.shown = new Float64Array(size);
    }
    function showImage(row) {
      state.row = row; state.drawn = false;
      state.input = imageInput(images, row);
      state.shown = new Float64Array(size);
      for (var i = 0; i < size; i++) state.shown[i] = images.pixels[row * size + i] * images.unitRange;
      if (pen) {
        var small = document.createElement("canvas");
        paintGrid(small, state.shown, pixelColour(C), H, W);
        pen.save();
        pen.imageSmoothingEnabled = false;
        pen.clearRect(0, 0, canvas.width, canvas.height);
        pen.drawImage(small, 0, 0, canvas.width, canvas.height);
        pen.restore();
      }
      update(true);
    }
    function toggle(unit, on) {
      state.silenced[unit] = on === undefined ? !state.silenced[unit] : on;
      update(true);
    }

    // ---- show the network's response
    var blankPrompt = $("nk-source").textContent; // the template's words: "Draw a digit, or pick a test image."
    function update(announce) {
      var result = state.result = forward(net, state.input, state.silenced, state.mode);
      var blank = state.row === null && !state.drawn;
      var predicted = result.predicted, preferred = net.preferredUnit[predicted], dominant = net.dominantUnit[predicted];
      if (!state.unitChosen) state.unit = preferred; // until the reader picks one, follow the prediction
      if (state.unit !== state.shownUnit) keepInView($("nk-units"), unitRows[state.unit].row);
      state.shownUnit = state.unit;
      paintGrid($("nk-input"), state.shown, pixelColour(C), H, W);
      outputRows.forEach(function (out, k) {
        var p = result.probabilities[k];
        out.fill.style.width = (100 * p).toFixed(2) + "%";
        out.value.textContent = fixed(100 * p, 2) + " %";
        out.value.setAttribute("data-value", String(p));
        out.row.classList.toggle("nk-predicted", k === predicted);
      });
      unitRows.forEach(function (row, unit) {
        var a = result.hidden[unit];
        row.fill.style.width = Math.min(100, 100 * Math.abs(a) / scaleMax).toFixed(2) + "%";
        row.fill.classList.toggle("nk-negative", a < 0);
        row.value.textContent = fixed(a, 3);
        row.value.setAttribute("data-value", String(a));
        row.bar.setAttribute("aria-pressed", String(state.silenced[unit]));
        row.box.checked = state.silenced[unit];
        row.row.classList.toggle("nk-silenced", state.silenced[unit]);
        row.radio.checked = unit === state.unit;
        row.row.classList.toggle("nk-preferred", unit === preferred);
        var marks = [];
        if (unit === preferred) marks.push("\u2605 preferred unit of " + labels[predicted]);
        if (unit === dominant) marks.push("\u25c6 dominant unit of " + labels[predicted]);
        row.mark.textContent = marks.join(" \u00b7 ");
      });
      $("nk-predicted").textContent = blank ? "\u2013" : net.classNames[predicted];
      $("nk-predicted").setAttribute("data-value", blank ? "" : String(predicted));
      $("nk-source").textContent = state.row !== null
        ? "Test image " + images.indices[state.row] + ", true label " + net.classNames[images.labels[state.row]] +
          (images.labels[state.row] === predicted ? " (predicted correctly)" : " (misclassified)")
        : state.drawn ? "Your drawing, prepared as MNIST digits are (right)." : blankPrompt;
      showUnit(state.unit);
      writeFragment();
      if (announce) {
        var silenced = selected(state.silenced);
        $("nk-live").textContent = blank ? "The drawing is empty." :
          "Predicted " + labels[predicted] + ", probability " + fixed(100 * result.probabilities[predicted], 1) +
          " %. Unit " + state.unit + " activation " + fixed(result.hidden[state.unit], 2) + ". " +
          (silenced.length ? "Silenced units (" + (state.mode === "mean" ? "set to their mean" : "set to zero") + "): " + silenced.join(", ") + "." : "No unit silenced.");
      }
    }

    // A long unit list scrolls within its panel: bring the inspected unit into it, leaving the page where it is.
    function keepInView(list, row) {
      var outer = list.getBoundingClientRect(), inner = row.getBoundingClientRect();
      if (inner.top < outer.top) list.scrollTop -= outer.top - inner.top;
      else if (inner.bottom > outer.bottom) list.scrollTop += inner.bottom - outer.bottom;
    }

    // The inspected unit's weighted sum over its layer's input x: pixels at the first layer, the previous
    // layer's outputs deeper in. Maps of w and w (.) x are drawn only when x is grey pixels.
    function showUnit(unit) {
      var layer = net.layers[net.readout], x = state.result.input, n = layer.units;
      var sum = 0;
      for (var i = 0; i < layer.inputs; i++) sum += layer.kernel[i * n + unit] * x[i];
      if (pixelMaps) showMaps(layer, unit);
      $("nk-unit-title").textContent = "Unit " + unit + ": why it fires";
      var pre = sum + layer.bias[unit];
      var note = state.silenced[unit] ? " It is silenced: the next layer receives " +
        fixed(state.mode === "mean" ? net.unitMeans[unit] : 0, 3) + " instead." : "";
      $("nk-unit-sum").textContent = "Sum of w \u2299 x = " + fixed(sum, 3) + ", bias = " + fixed(layer.bias[unit], 3) +
        ", pre-activation = " + fixed(pre, 3) + ", activation " + layer.activation + " = " +
        fixed(state.result.active[unit], 3) + "." + note;
    }
    function showMaps(layer, unit) {
      var weights = new Float64Array(H * W), contribution = new Float64Array(H * W);
      var wMax = 1e-12, cMax = 1e-12;
      for (var i = 0; i < weights.length; i++) {
        weights[i] = layer.kernel[i * layer.units + unit];
        contribution[i] = weights[i] * state.input[i];
        wMax = Math.max(wMax, Math.abs(weights[i]));
        cMax = Math.max(cMax, Math.abs(contribution[i]));
      }
      paintGrid($("nk-weights"), weights, function (v, i) { return divergingColour(v[i] / wMax); }, H, W);
      paintGrid($("nk-contribution"), contribution, function (v, i) { return divergingColour(v[i] / cMax); }, H, W);
      $("nk-weights-scale").textContent = "\u00b1" + fixed(wMax, 3);
      $("nk-contribution-scale").textContent = "\u00b1" + fixed(cMax, 3);
    }

    // ---- the view in the URL fragment: #image=1234&unit=3&silenced=2,5&mode=mean
    function fragment() {
      var parts = [];
      if (state.row !== null) parts.push("image=" + images.indices[state.row]);
      parts.push("unit=" + state.unit);
      var silenced = selected(state.silenced);
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
    drawable: drawable,
    imageInput: imageInput,
    dense: dense,
    activate: activate,
    forward: forward,
    areaWeights: areaWeights,
    preprocess: preprocess,
  };

  if (root.document && root.document.getElementById("nk-app") && root.NU_KERAS_EXPLORE) {
    start(root.NU_KERAS_EXPLORE);
  }
})(typeof window !== "undefined" ? window : globalThis);
