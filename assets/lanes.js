/* vmaviz: the timeline, drawn on a canvas (data from vmaviz/ui/lanes.py).
 *
 * Served by Dash from assets/ (no CDN), before vmaviz.js (files load in name order),
 * which wires it to the app (window.vmavizLanes: setData, setCursor, zoom, pan,
 * itemsAt, active).
 */
(function () {
    "use strict";

    /* ---- the timeline: lanes drawn on a canvas (vmaviz/ui/lanes.py sends the data) ----
     *
     * One base canvas per run holds the lanes; an overlay canvas on top holds the
     * cursor and takes the pointer. Every timeline on the page shares one time range
     * (compare view zooms both at once). Items come grouped by kind in paint order,
     * least telling first, so that where many fall under one pixel the waits are
     * painted last and stay visible. Each kind has a hatch pattern and a badge as
     * well as a colour. Wheel: zoom around the pointer; drag: pan; double click:
     * back to the whole run's work; W/S zoom and A/D pan (keys); click: go to the
     * step that started the item; shift-drag: select a time range (its statistics
     * come from the server, vmaviz/ui/timeline_nav.py; Escape clears it). Tracks can
     * be filtered by name, pinned on top and collapsed to a thin row (a click on a
     * name pins it, on its triangle collapses it). Hand-off arrows go from the step
     * that released or granted a lock to the thread it woke (data.flows). */
    window.vmavizLanes = (function () {
        var views = {};
        var range = null;
        var home = null;
        var cursor = {};
        var pending = false;
        var INK = "#000000";
        var FONT = "12px DejaVu Sans Mono, Menlo, Consolas, monospace";

        function rowHeight(n) {
            return n <= 16 ? 24 : n <= 48 ? 18 : 12;
        }

        function luminance(hex) {
            var v = parseInt((hex || "#ffffff").slice(1), 16);
            return (0.299 * ((v >> 16) & 255) + 0.587 * ((v >> 8) & 255) + 0.114 * (v & 255)) / 255;
        }

        /* A fill for one kind: its colour, hatched when it has a pattern. */
        function fillFor(ctx, kind) {
            if (!kind.pattern) {
                return kind.colour;
            }
            var size = 8;
            var c = document.createElement("canvas");
            c.width = size;
            c.height = size;
            var g = c.getContext("2d");
            g.fillStyle = kind.colour;
            g.fillRect(0, 0, size, size);
            g.strokeStyle = luminance(kind.colour) < 0.45 ? "#ffffff" : INK;
            g.fillStyle = g.strokeStyle;
            g.lineWidth = 1.2;
            g.beginPath();
            var p = kind.pattern;
            if (p === "/" || p === "x") {
                g.moveTo(0, size); g.lineTo(size, 0);
                g.moveTo(-1, 1); g.lineTo(1, -1);
                g.moveTo(size - 1, size + 1); g.lineTo(size + 1, size - 1);
            }
            if (p === "\\" || p === "x") {
                g.moveTo(0, 0); g.lineTo(size, size);
                g.moveTo(size - 1, -1); g.lineTo(size + 1, 1);
                g.moveTo(-1, size - 1); g.lineTo(1, size + 1);
            }
            if (p === "-" || p === "+") {
                g.moveTo(0, size / 2); g.lineTo(size, size / 2);
            }
            if (p === "|" || p === "+") {
                g.moveTo(size / 2, 0); g.lineTo(size / 2, size);
            }
            g.stroke();
            if (p === ".") {
                g.fillRect(size / 2 - 1, size / 2 - 1, 2, 2);
            }
            return ctx.createPattern(c, "repeat");
        }

        function niceStep(span, target) {
            var raw = span / Math.max(target, 1);
            var mag = Math.pow(10, Math.floor(Math.log10(raw)));
            var steps = [1, 2, 5, 10];
            for (var i = 0; i < steps.length; i++) {
                if (raw <= steps[i] * mag) {
                    return steps[i] * mag;
                }
            }
            return 10 * mag;
        }

        function fmt(x, step) {
            var digits = Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
            return x.toFixed(digits);
        }

        /* Per row, the items sorted by start (for hit tests). */
        function index(data) {
            var it = data.items;
            var byRow = [];
            for (var r = 0; r < data.rows.length; r++) {
                byRow.push([]);
            }
            for (var i = 0; i < it.start.length; i++) {
                if (byRow[it.row[i]]) {
                    byRow[it.row[i]].push(i);
                }
            }
            byRow.forEach(function (list) {
                list.sort(function (a, b) { return it.start[a] - it.start[b]; });
            });
            return byRow;
        }

        function build(side, el, data) {
            el.innerHTML = "";
            var head = document.createElement("div");
            head.className = "lanes-head";
            var title = document.createElement("h3");
            title.className = "lanes-title";
            title.textContent = data.title + (data.hidden_locks ?
                " (the " + (data.rows.length - data.threads - 2) + " busiest VMA locks; " +
                data.hidden_locks + " more not shown)" : "");
            head.appendChild(title);
            var legend = document.createElement("ul");
            legend.className = "lanes-legend";
            legend.setAttribute("aria-label", "legend");
            data.kinds.forEach(function (kind) {
                if (!kind.legend) {
                    return;
                }
                var li = document.createElement("li");
                var sw = document.createElement("canvas");
                sw.width = 28;
                sw.height = 14;
                sw.className = "lanes-swatch";
                var g = sw.getContext("2d");
                g.fillStyle = fillFor(g, kind);
                g.fillRect(0, 0, 28, 14);
                g.strokeStyle = INK;
                g.strokeRect(0.5, 0.5, 27, 13);
                li.appendChild(sw);
                li.appendChild(document.createTextNode(
                    (kind.badge ? kind.badge + ": " : "") + kind.label));
                legend.appendChild(li);
            });
            head.appendChild(legend);
            var tools = document.createElement("div");
            tools.className = "lanes-tools";
            var filter = document.createElement("input");
            filter.type = "search";
            filter.className = "lanes-filter";
            filter.placeholder = "filter tracks by name";
            filter.setAttribute("aria-label", "filter tracks by name");
            filter.maxLength = 80;
            tools.appendChild(filter);
            var arrows = document.createElement("label");
            arrows.className = "lanes-arrows";
            var box0 = document.createElement("input");
            box0.type = "checkbox";
            box0.checked = true;
            arrows.appendChild(box0);
            arrows.appendChild(document.createTextNode(
                " hand-off arrows (" + ((data.flows && data.flows.from.length) || 0) + ")"));
            tools.appendChild(arrows);
            head.appendChild(tools);
            el.appendChild(head);
            var box = document.createElement("div");
            box.className = "lanes-box";
            var base = document.createElement("canvas");
            base.className = "lanes-base";
            var over = document.createElement("canvas");
            over.className = "lanes-over";
            var tip = document.createElement("div");
            tip.className = "lanes-tip";
            tip.hidden = true;
            box.appendChild(base);
            box.appendChild(over);
            box.appendChild(tip);
            el.appendChild(box);
            var hint = document.createElement("p");
            hint.className = "hint lanes-hint";
            hint.textContent = "Wheel or W/S: zoom · drag or A/D: pan · double click: whole run · " +
                "click a bar: go to its step · shift-drag: select a range (Esc clears) · " +
                "click a track name: pin it on top, its triangle: collapse it" +
                (data.coarsened_ns ? " · drawn in bins of " + data.coarsened_ns + " ns" : "");
            el.appendChild(hint);
            var v = {side: side, el: el, data: data, base: base, over: over, tip: tip,
                     byRow: index(data), fills: null, gutter: 0, filter: "", pinned: [],
                     collapsed: {}, flows: true, sel: null, lay: null, width: 0};
            relayout(v);
            /* The width is kept from the last resize: reading clientWidth on each
             * step forced a layout of the page between the step's DOM writes (about
             * 11 ms a step on a big run), which the next frame then did again. */
            if (typeof ResizeObserver === "function") {
                new ResizeObserver(function () {
                    var w = el.clientWidth;
                    if (w && w !== v.width) {
                        v.width = w;
                        if (views[side] === v && range) {
                            redrawAll();
                        }
                    }
                }).observe(el);
            }
            filter.addEventListener("input", function () {
                v.filter = filter.value.slice(0, 80).toLowerCase();
                relayout(v);
                redrawAll();
            });
            box0.addEventListener("change", function () {
                v.flows = box0.checked;
                redrawAll();
            });
            hook(v);
            return v;
        }

        /* Where each row is drawn: pinned threads first (in pin order), then the
         * others in their order; rows whose name does not match the filter are left
         * out (y -1); a collapsed row is a thin strip. */
        var THIN = 5;
        function relayout(v) {
            var d = v.data;
            var n = d.rows.length;
            var rh = rowHeight(Math.max(n, 1));
            var y = new Float64Array(n).fill(-1);
            var h = new Float64Array(n);
            var order = [];
            var f = v.filter;
            var shown = function (r) {
                return !f || d.rows[r].toLowerCase().indexOf(f) >= 0;
            };
            v.pinned.forEach(function (r) { if (shown(r)) { order.push(r); } });
            for (var r = 0; r < n; r++) {
                if (v.pinned.indexOf(r) < 0 && (r === d.threads ? !f : shown(r))) {
                    order.push(r);
                }
            }
            var top = 6;
            order.forEach(function (r) {
                y[r] = top;
                h[r] = v.collapsed[r] ? THIN : rh;
                top += h[r];
            });
            v.lay = {y: y, h: h, order: order, bottom: top, rh: rh};
            v.el.setAttribute("data-rows-shown", String(order.length));
            v.el.setAttribute("data-pinned", v.pinned.map(function (r) { return d.rows[r]; }).join("|"));
            v.el.setAttribute("data-collapsed", String(Object.keys(v.collapsed).length));
        }

        function geometry(v) {
            var rh = v.lay.rh;
            if (!v.width) {
                v.width = v.el.clientWidth;
            }
            var width = Math.max(v.width, 300);
            return {width: width, rh: rh, top: 6, height: v.lay.bottom + 28};
        }

        /* The row under a y position (px in the canvas), or -1. */
        function rowAt(v, py) {
            var lay = v.lay;
            for (var i = 0; i < lay.order.length; i++) {
                var r = lay.order[i];
                if (py >= lay.y[r] && py < lay.y[r] + lay.h[r]) {
                    return r;
                }
            }
            return -1;
        }

        function gutterOf(v) {
            var g = v.base.getContext("2d");
            g.font = FONT;
            var w = 0;
            v.data.rows.forEach(function (name) {
                w = Math.max(w, g.measureText(name).width);
            });
            return Math.min(240, Math.ceil(w) + 14);
        }

        function sharedGutter() {
            var g = 0;
            Object.keys(views).forEach(function (k) { g = Math.max(g, views[k].gutter); });
            return g;
        }

        function toPx(v, geo, x) {
            var g = sharedGutter();
            return g + (x - range[0]) / (range[1] - range[0]) * (geo.width - g - 12);
        }

        function toX(v, geo, px) {
            var g = sharedGutter();
            return range[0] + (px - g) / (geo.width - g - 12) * (range[1] - range[0]);
        }

        function size(canvas, geo) {
            var dpr = window.devicePixelRatio || 1;
            var w = Math.round(geo.width * dpr);
            var h = Math.round(geo.height * dpr);
            if (canvas.width !== w || canvas.height !== h) {
                canvas.width = w;
                canvas.height = h;
                canvas.style.width = geo.width + "px";
                canvas.style.height = geo.height + "px";
            }
            var ctx = canvas.getContext("2d");
            ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
            return ctx;
        }

        function draw(v) {
            var geo = geometry(v);
            var ctx = size(v.base, geo);
            var d = v.data;
            var it = d.items;
            var gut = sharedGutter();
            var right = geo.width - 12;
            if (!v.fills) {
                v.fills = d.kinds.map(function (k) { return fillFor(ctx, k); });
            }
            ctx.clearRect(0, 0, geo.width, geo.height);
            // Row stripes and names.
            ctx.font = FONT;
            ctx.textBaseline = "middle";
            var lay = v.lay;
            lay.order.forEach(function (r, i) {
                var y = lay.y[r];
                var rowh = lay.h[r];
                if (i % 2) {
                    ctx.fillStyle = "#f6f6f6";
                    ctx.fillRect(gut, y, right - gut, rowh);
                }
                if (rowh < 10 || r === d.threads) {
                    if (r !== d.threads) {
                        ctx.fillStyle = "#888888";
                        ctx.fillRect(4, y + 1, gut - 12, rowh - 2);
                    }
                    return;
                }
                ctx.fillStyle = INK;
                // ▾ collapses the row; a pinned row is marked with a pin (●).
                var mark = (r < d.threads || r > d.threads ? "\u25be " : "") +
                    (v.pinned.indexOf(r) >= 0 ? "\u25cf " : "");
                ctx.fillText(mark + d.rows[r], 4, y + rowh / 2, gut - 8);
            });
            if (d.rows.length > d.threads && lay.y[d.threads] >= 0) {
                var ys = lay.y[d.threads] + lay.h[d.threads] / 2;
                ctx.strokeStyle = "#444444";
                ctx.setLineDash([2, 3]);
                ctx.beginPath();
                ctx.moveTo(gut, ys);
                ctx.lineTo(right, ys);
                ctx.stroke();
                ctx.setLineDash([]);
            }
            // Time grid and axis.
            var span = range[1] - range[0];
            var step = niceStep(span, Math.max(2, Math.floor((right - gut) / 110)));
            var first = Math.ceil(range[0] / step) * step;
            var axisY = lay.bottom;
            ctx.strokeStyle = "#e0e0e0";
            ctx.fillStyle = INK;
            ctx.textBaseline = "top";
            ctx.textAlign = "center";
            for (var t = first; t <= range[1] + 1e-12; t += step) {
                var px = toPx(v, geo, t);
                ctx.beginPath();
                ctx.moveTo(px, geo.top);
                ctx.lineTo(px, axisY + 4);
                ctx.stroke();
                ctx.fillText(fmt(t, step), px, axisY + 6);
            }
            ctx.textAlign = "right";
            ctx.fillText("µs", geo.width - 2, axisY + 6);
            ctx.textAlign = "left";
            // The items, clipped to the plot area.
            ctx.save();
            ctx.beginPath();
            ctx.rect(gut, 0, right - gut, axisY);
            ctx.clip();
            var scale = (right - gut) / span;
            var kind = -1;
            var labelled = [];
            for (var i = 0; i < it.start.length; i++) {
                var x0 = gut + (it.start[i] - range[0]) * scale;
                var x1 = gut + (it.end[i] - range[0]) * scale;
                if (x1 < gut || x0 > right) {
                    continue;
                }
                if (it.kind[i] !== kind) {
                    kind = it.kind[i];
                    ctx.fillStyle = v.fills[kind];
                }
                var yr = lay.y[it.row[i]];
                if (yr < 0) {
                    continue;
                }
                var hr = lay.h[it.row[i]];
                x0 = Math.max(x0, gut - 1);
                x1 = Math.min(x1, right + 1);
                var w = Math.max(x1 - x0, 1);
                if (hr < 10) {
                    ctx.fillRect(x0, yr + 1, w, hr - 2);
                    continue;
                }
                ctx.fillRect(x0, yr + 2, w, hr - 4);
                if (w > 4) {
                    labelled.push(i);
                }
            }
            // Outlines and badges of the bars wide enough to take them.
            if (labelled.length < 5000) {
                ctx.strokeStyle = INK;
                ctx.lineWidth = 0.6;
                ctx.font = (geo.rh >= 18 ? "11px " : "9px ") + "DejaVu Sans, Verdana, sans-serif";
                ctx.textBaseline = "middle";
                labelled.forEach(function (j) {
                    var a = Math.max(gut + (it.start[j] - range[0]) * scale, gut - 1);
                    var b = Math.min(gut + (it.end[j] - range[0]) * scale, right + 1);
                    var top = lay.y[it.row[j]] + 2;
                    ctx.strokeRect(a, top, b - a, geo.rh - 4);
                    var k = d.kinds[it.kind[j]];
                    if (k.badge && b - a > 10 + 7 * k.badge.length && geo.rh >= 12) {
                        // The badge on a white chip: readable on any fill and hatch.
                        ctx.fillStyle = "#ffffff";
                        ctx.fillRect(a + 2, top + 2, 7 * k.badge.length + 4, geo.rh - 8);
                        ctx.fillStyle = INK;
                        ctx.fillText(k.badge, a + 4, top + (geo.rh - 4) / 2);
                    }
                });
            }
            drawFlows(v, ctx, gut, right, scale);
            // Marks (an explored counterexample's preemption points): a dashed
            // vertical line across every lane with a short tag on top.
            var marks = d.marks || [];
            if (marks.length) {
                ctx.save();
                ctx.strokeStyle = "#d55e00";
                ctx.fillStyle = "#d55e00";
                ctx.lineWidth = 2;
                ctx.setLineDash([5, 3]);
                ctx.font = "10px DejaVu Sans, Verdana, sans-serif";
                ctx.textBaseline = "top";
                marks.forEach(function (m) {
                    var x = gut + (m.us - range[0]) * scale;
                    if (x < gut || x > right) {
                        return;
                    }
                    ctx.beginPath();
                    ctx.moveTo(x, geo.top);
                    ctx.lineTo(x, geo.height);
                    ctx.stroke();
                    ctx.fillText(m.label, x + 3, Math.max(geo.top - 12, 0));
                });
                ctx.restore();
            }
            v.el.setAttribute("data-marks", String(marks.length));
            ctx.restore();
            v.el.setAttribute("data-x0", String(range[0]));
            v.el.setAttribute("data-x1", String(range[1]));
            drawCursor(v, geo);
        }

        /* The hand-off arrows in view: from the releasing thread's row at the wake
         * to the woken thread's row when it runs again. Hidden or collapsed rows
         * and arrows wholly outside the range are skipped. */
        function drawFlows(v, ctx, gut, right, scale) {
            var fl = v.data.flows;
            var drawn = 0;
            if (v.flows && fl && fl.from.length) {
                var lay = v.lay;
                ctx.save();
                ctx.lineWidth = 1.5;
                for (var i = 0; i < fl.from.length; i++) {
                    if (fl.t1[i] < range[0] || fl.t0[i] > range[1]) {
                        continue;
                    }
                    var a = fl.from[i];
                    var b = fl.to[i];
                    if (lay.y[a] < 0 || lay.y[b] < 0) {
                        continue;
                    }
                    var xa = gut + (fl.t0[i] - range[0]) * scale;
                    var xb = gut + (fl.t1[i] - range[0]) * scale;
                    var ya = lay.y[a] + lay.h[a] / 2;
                    var yb = lay.y[b] + lay.h[b] / 2;
                    // Granted hand-offs solid, wakes to retry dashed.
                    ctx.strokeStyle = fl.granted[i] ? "#7a1fa2" : "#b8860b";
                    ctx.fillStyle = ctx.strokeStyle;
                    ctx.setLineDash(fl.granted[i] ? [] : [4, 3]);
                    ctx.beginPath();
                    ctx.moveTo(xa, ya);
                    ctx.lineTo(xb, yb);
                    ctx.stroke();
                    var ang = Math.atan2(yb - ya, xb - xa);
                    ctx.setLineDash([]);
                    ctx.beginPath();
                    ctx.moveTo(xb, yb);
                    ctx.lineTo(xb - 8 * Math.cos(ang - 0.4), yb - 8 * Math.sin(ang - 0.4));
                    ctx.lineTo(xb - 8 * Math.cos(ang + 0.4), yb - 8 * Math.sin(ang + 0.4));
                    ctx.fill();
                    drawn++;
                }
                ctx.restore();
            }
            v.el.setAttribute("data-flows-drawn", String(drawn));
        }

        function drawCursor(v, geo) {
            geo = geo || geometry(v);
            var ctx = size(v.over, geo);
            ctx.clearRect(0, 0, geo.width, geo.height);
            var sel = v.sel;
            v.el.setAttribute("data-sel0", sel ? String(sel[0]) : "");
            v.el.setAttribute("data-sel1", sel ? String(sel[1]) : "");
            if (sel && sel[1] > range[0] && sel[0] < range[1]) {
                var g0 = sharedGutter();
                var sa = Math.max(toPx(v, geo, sel[0]), g0);
                var sb = Math.min(toPx(v, geo, sel[1]), geo.width - 12);
                ctx.fillStyle = "rgba(0, 90, 181, 0.18)";
                ctx.fillRect(sa, geo.top, Math.max(sb - sa, 1), v.lay.bottom - geo.top);
                ctx.fillStyle = "#005ab5";
                ctx.fillRect(sa, geo.top, 1.5, v.lay.bottom - geo.top);
                ctx.fillRect(sb - 1.5, geo.top, 1.5, v.lay.bottom - geo.top);
            }
            var x = cursor[v.side];
            v.el.setAttribute("data-cursor", typeof x === "number" ? String(x) : "");
            if (typeof x !== "number" || x < range[0] || x > range[1]) {
                return;
            }
            var px = toPx(v, geo, x);
            var bottom = v.lay.bottom;
            ctx.fillStyle = INK;
            ctx.fillRect(px - 1.5, geo.top, 3, bottom - geo.top);
            ctx.beginPath();
            ctx.moveTo(px - 6, 0);
            ctx.lineTo(px + 6, 0);
            ctx.lineTo(px, geo.top + 4);
            ctx.fill();
        }

        function redrawAll() {
            if (pending) {
                return;
            }
            pending = true;
            window.requestAnimationFrame(function () {
                pending = false;
                Object.keys(views).forEach(function (k) { draw(views[k]); });
            });
        }

        function clampRange(a, b) {
            var lo = 0;
            var hi = home ? home.max : b;
            var span = Math.min(Math.max(b - a, 1e-4), hi - lo);
            a = Math.max(lo, Math.min(a, hi - span));
            return [a, a + span];
        }

        function zoom(factor, at) {
            if (!range) {
                return;
            }
            at = typeof at === "number" ? at : (range[0] + range[1]) / 2;
            range = clampRange(at - (at - range[0]) * factor, at + (range[1] - at) * factor);
            redrawAll();
        }

        function pan(fraction) {
            if (!range) {
                return;
            }
            var span = range[1] - range[0];
            range = clampRange(range[0] + fraction * span, range[1] + fraction * span);
            redrawAll();
        }

        function hit(v, ev) {
            var rect = v.over.getBoundingClientRect();
            var geo = geometry(v);
            var px = ev.clientX - rect.left;
            var py = ev.clientY - rect.top;
            var row = rowAt(v, py);
            if (row < 0 || row === v.data.threads && v.data.rows.length > v.data.threads ||
                    px < sharedGutter()) {
                return null;
            }
            var t = toX(v, geo, px);
            var tol = (range[1] - range[0]) / (geo.width - sharedGutter()) * 2;
            var list = v.byRow[row];
            var it = v.data.items;
            var lo = 0;
            var hi = list.length;
            while (lo < hi) {
                var mid = (lo + hi) >> 1;
                if (it.start[list[mid]] <= t + tol) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            var best = null;
            for (var i = lo - 1; i >= 0 && i >= lo - 400; i--) {
                var j = list[i];
                if (it.end[j] >= t - tol && (best === null || it.kind[j] > it.kind[best])) {
                    best = j;
                }
            }
            return best === null ? null : {item: best, row: row};
        }

        function describe(v, h) {
            var it = v.data.items;
            var k = v.data.kinds[it.kind[h.item]];
            var label = it.label[h.item] >= 0 ? v.data.labels[it.label[h.item]] : "";
            var dur = it.end[h.item] - it.start[h.item];
            return v.data.rows[h.row] + ": " + (label ? label + " · " : "") + k.label +
                "\n" + it.start[h.item].toFixed(3) + " → " + it.end[h.item].toFixed(3) +
                " µs (" + dur.toFixed(3) + " µs)\nstep " + it.step[h.item] + " (click to go there)";
        }

        function hook(v) {
            var drag = null;
            v.over.addEventListener("wheel", function (ev) {
                ev.preventDefault();
                var geo = geometry(v);
                var rect = v.over.getBoundingClientRect();
                var at = toX(v, geo, ev.clientX - rect.left);
                zoom(Math.exp(ev.deltaY * 0.0015), at);
            }, {passive: false});
            v.over.addEventListener("mousedown", function (ev) {
                var rect = v.over.getBoundingClientRect();
                var px = ev.clientX - rect.left;
                if (px < sharedGutter()) {
                    gutterClick(v, px, ev.clientY - rect.top);
                    return;
                }
                if (ev.shiftKey) {
                    // Shift-drag selects a range instead of panning.
                    var t = toX(v, geometry(v), px);
                    drag = {x: ev.clientX, select: true, t: t, moved: false};
                    ev.preventDefault();
                    return;
                }
                drag = {x: ev.clientX, range: range.slice(), moved: false};
            });
            window.addEventListener("mousemove", function (ev) {
                if (!drag) {
                    return;
                }
                if (drag.select) {
                    var rect = v.over.getBoundingClientRect();
                    var t = toX(v, geometry(v), ev.clientX - rect.left);
                    t = Math.max(0, Math.min(t, home.max));
                    drag.moved = drag.moved || Math.abs(ev.clientX - drag.x) > 3;
                    if (drag.moved) {
                        v.sel = [Math.min(drag.t, t), Math.max(drag.t, t)];
                        drawCursor(v);
                    }
                    return;
                }
                var dx = ev.clientX - drag.x;
                if (Math.abs(dx) > 3) {
                    drag.moved = true;
                }
                if (drag.moved) {
                    var geo = geometry(v);
                    var span = drag.range[1] - drag.range[0];
                    var dt = -dx / (geo.width - sharedGutter() - 12) * span;
                    range = clampRange(drag.range[0] + dt, drag.range[1] + dt);
                    redrawAll();
                }
            });
            window.addEventListener("mouseup", function (ev) {
                if (!drag) {
                    return;
                }
                var moved = drag.moved;
                var selecting = drag.select;
                drag = null;
                if (selecting) {
                    if (moved) {
                        sendRange(v);
                    }
                    return;
                }
                // The second click of a double click (which resets the zoom) does
                // not go to a step again.
                if (moved || ev.target !== v.over || ev.detail >= 2) {
                    return;
                }
                var h = hit(v, ev);
                if (h && window.dash_clientside && window.dash_clientside.set_props) {
                    window.dash_clientside.set_props("timeline-click", {
                        data: {side: v.side, step: v.data.items.step[h.item], at: Date.now()},
                    });
                }
            });
            v.over.addEventListener("mousemove", function (ev) {
                if (drag) {
                    v.tip.hidden = true;
                    return;
                }
                var h = hit(v, ev);
                if (!h) {
                    v.tip.hidden = true;
                    v.over.style.cursor = "default";
                    return;
                }
                v.over.style.cursor = "pointer";
                v.tip.textContent = describe(v, h);
                var rect = v.over.getBoundingClientRect();
                v.tip.style.left = Math.min(ev.clientX - rect.left + 14, rect.width - 260) + "px";
                v.tip.style.top = (ev.clientY - rect.top + 14) + "px";
                v.tip.hidden = false;
            });
            v.over.addEventListener("mouseleave", function () { v.tip.hidden = true; });
            v.over.addEventListener("dblclick", function (ev) {
                ev.preventDefault();
                range = [0, home.work];
                redrawAll();
            });
        }

        /* A mouse-down on the names: on the triangle, collapse or expand the row;
         * elsewhere, pin it on top (or unpin it). */
        function gutterClick(v, px, py) {
            var r = rowAt(v, py);
            if (r < 0 || r === v.data.threads && v.data.rows.length > v.data.threads) {
                return;
            }
            if (px < 16 || v.collapsed[r]) {
                if (v.collapsed[r]) {
                    delete v.collapsed[r];
                } else {
                    v.collapsed[r] = true;
                }
            } else {
                var at = v.pinned.indexOf(r);
                if (at >= 0) {
                    v.pinned.splice(at, 1);
                } else {
                    v.pinned.push(r);
                }
            }
            relayout(v);
            redrawAll();
        }

        /* The selected range to the server (its statistics), only when it changed. */
        function sendRange(v) {
            var key = v.sel ? v.sel[0].toFixed(4) + ":" + v.sel[1].toFixed(4) : "";
            if (key === v.sentSel) {
                return;
            }
            v.sentSel = key;
            if (window.dash_clientside && window.dash_clientside.set_props) {
                window.dash_clientside.set_props("timeline-range", {
                    data: {side: v.side, t0: v.sel ? v.sel[0] : null, t1: v.sel ? v.sel[1] : null},
                });
            }
        }

        /* Select a range from code (tests, the console): [t0, t1] in µs, or null. */
        function select(side, sel) {
            var v = views[side];
            if (!v) {
                return;
            }
            v.sel = sel ? [Math.min(sel[0], sel[1]), Math.max(sel[0], sel[1])] : null;
            drawCursor(v);
            sendRange(v);
        }

        window.addEventListener("keydown", function (ev) {
            if (ev.key !== "Escape" || ev.defaultPrevented) {
                return;
            }
            var tag = ((ev.target && ev.target.tagName) || "").toLowerCase();
            if (tag === "input" || tag === "textarea" || tag === "select") {
                return;
            }
            Object.keys(views).forEach(function (k) {
                if (views[k].sel) {
                    select(k, null);
                }
            });
        });

        function setData(list) {
            var seen = {};
            list.forEach(function (entry) {
                var side = entry.id.side;
                var el = document.getElementById(JSON.stringify({side: side, type: "timeline"}));
                if (!el || !entry.value) {
                    return;
                }
                seen[side] = true;
                var old = views[side];
                if (old && old.el === el && old.data === entry.value) {
                    return;
                }
                views[side] = build(side, el, entry.value);
                views[side].gutter = gutterOf(views[side]);
            });
            Object.keys(views).forEach(function (k) {
                if (!seen[k]) {
                    delete views[k];
                }
            });
            var work = 0;
            var max = 0;
            Object.keys(views).forEach(function (k) {
                work = Math.max(work, views[k].data.work_end_us || views[k].data.end_us);
                max = Math.max(max, views[k].data.end_us);
            });
            if (!Object.keys(views).length) {
                range = null;
                return;
            }
            home = {work: work * 1.02, max: max * 1.02};
            range = [0, home.work];
            redrawAll();
        }

        function setCursor(times) {
            cursor = times || {};
            if (!range) {
                return;
            }
            // A cursor outside the zoomed range brings the range to it.
            var xs = Object.keys(cursor).map(function (k) { return cursor[k]; })
                .filter(function (x) { return typeof x === "number"; });
            if (xs.length && (xs[0] < range[0] || xs[0] > range[1])) {
                var span = range[1] - range[0];
                range = clampRange(xs[0] - span / 2, xs[0] + span / 2);
                redrawAll();
                return;
            }
            Object.keys(views).forEach(function (k) { drawCursor(views[k]); });
        }

        /* What is drawn at time x (µs) on one side: [{row, kind, label, step}]
         * (tests, and anyone debugging the lanes from the console). */
        function itemsAt(side, x) {
            var v = views[side];
            if (!v) {
                return [];
            }
            var it = v.data.items;
            var out = [];
            for (var i = 0; i < it.start.length; i++) {
                if (it.start[i] <= x && x < it.end[i]) {
                    out.push({
                        row: v.data.rows[it.row[i]],
                        kind: v.data.kinds[it.kind[i]].key,
                        label: it.label[i] >= 0 ? v.data.labels[it.label[i]] : "",
                        step: it.step[i],
                    });
                }
            }
            return out;
        }

        /* ---- the timeline as a vector SVG (export for slides; built on demand) ----
         *
         * The same picture the canvas shows (range, filter, pinned and collapsed rows,
         * arrows, marks, cursor) written as SVG elements, so slides can scale it
         * without blur. Bars of one kind on one row that touch within half a pixel
         * become one <rect>: a long run then stays a few thousand elements. */
        function esc(text) {
            return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;")
                .replace(/>/g, "&gt;").replace(/"/g, "&quot;");
        }

        function num(x) {
            return String(Math.round(x * 100) / 100);
        }

        /* An SVG <pattern> for a kind's hatch (the canvas fillFor's strokes). */
        function svgPattern(id, kind) {
            var ink = luminance(kind.colour) < 0.45 ? "#ffffff" : INK;
            var p = kind.pattern;
            var out = '<pattern id="' + id + '" width="8" height="8" patternUnits="userSpaceOnUse">' +
                '<rect width="8" height="8" fill="' + esc(kind.colour) + '"/>';
            var lines = [];
            if (p === "/" || p === "x") { lines.push("M0 8L8 0M-1 1L1 -1M7 9L9 7"); }
            if (p === "\\" || p === "x") { lines.push("M0 0L8 8M7 -1L9 1M-1 7L1 9"); }
            if (p === "-" || p === "+") { lines.push("M0 4L8 4"); }
            if (p === "|" || p === "+") { lines.push("M4 0L4 8"); }
            if (lines.length) {
                out += '<path d="' + lines.join("") + '" stroke="' + ink + '" stroke-width="1.2"/>';
            }
            if (p === ".") {
                out += '<rect x="3" y="3" width="2" height="2" fill="' + ink + '"/>';
            }
            return out + "</pattern>";
        }

        function toSvg(side) {
            var v = views[side];
            if (!v || !range) {
                return null;
            }
            var geo = geometry(v);
            var d = v.data;
            var it = d.items;
            var lay = v.lay;
            var gut = sharedGutter();
            var right = geo.width - 12;
            var span = range[1] - range[0];
            var scale = (right - gut) / span;
            var axisY = lay.bottom;
            var pre = "lanes-" + String(side).replace(/[^A-Za-z0-9_-]/g, "") + "-";
            var fills = d.kinds.map(function (k, i) {
                return k.pattern ? "url(#" + pre + i + ")" : esc(k.colour);
            });
            var o = [];
            o.push('<svg xmlns="http://www.w3.org/2000/svg" width="' + geo.width + '" height="' +
                geo.height + '" viewBox="0 0 ' + geo.width + " " + geo.height + '" ' +
                'font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="12">');
            o.push("<title>" + esc(d.title) + "</title><defs>");
            d.kinds.forEach(function (k, i) {
                if (k.pattern) {
                    o.push(svgPattern(pre + i, k));
                }
            });
            o.push('<clipPath id="' + pre + 'plot"><rect x="' + gut + '" y="0" width="' +
                num(right - gut) + '" height="' + num(axisY) + '"/></clipPath>');
            o.push('<marker id="' + pre + 'head" viewBox="0 0 8 8" refX="8" refY="4" ' +
                'markerWidth="8" markerHeight="8" orient="auto-start-reverse">' +
                '<path d="M0 1L8 4L0 7z" fill="context-stroke"/></marker></defs>');
            o.push('<rect width="100%" height="100%" fill="#ffffff"/>');
            // Row stripes and names.
            lay.order.forEach(function (r, i) {
                var y = lay.y[r];
                var rowh = lay.h[r];
                if (i % 2) {
                    o.push('<rect x="' + gut + '" y="' + y + '" width="' + num(right - gut) +
                        '" height="' + rowh + '" fill="#f6f6f6"/>');
                }
                if (rowh < 10 || r === d.threads) {
                    if (r !== d.threads) {
                        o.push('<rect x="4" y="' + (y + 1) + '" width="' + (gut - 12) +
                            '" height="' + (rowh - 2) + '" fill="#888888"/>');
                    }
                    return;
                }
                o.push('<text x="4" y="' + num(y + rowh / 2) + '" dominant-baseline="middle">' +
                    esc((v.pinned.indexOf(r) >= 0 ? "\u25cf " : "") + d.rows[r]) + "</text>");
            });
            if (d.rows.length > d.threads && lay.y[d.threads] >= 0) {
                var ys = lay.y[d.threads] + lay.h[d.threads] / 2;
                o.push('<line x1="' + gut + '" y1="' + ys + '" x2="' + right + '" y2="' + ys +
                    '" stroke="#444444" stroke-dasharray="2 3"/>');
            }
            // Time grid and axis.
            var step = niceStep(span, Math.max(2, Math.floor((right - gut) / 110)));
            for (var t = Math.ceil(range[0] / step) * step; t <= range[1] + 1e-12; t += step) {
                var px = num(toPx(v, geo, t));
                o.push('<line x1="' + px + '" y1="' + geo.top + '" x2="' + px + '" y2="' +
                    (axisY + 4) + '" stroke="#e0e0e0"/>');
                o.push('<text x="' + px + '" y="' + (axisY + 6) + '" text-anchor="middle" ' +
                    'dominant-baseline="hanging">' + fmt(t, step) + "</text>");
            }
            o.push('<text x="' + (geo.width - 2) + '" y="' + (axisY + 6) + '" text-anchor="end" ' +
                'dominant-baseline="hanging">µs</text>');
            // The bars, merged where they touch; outlined and badged when wide.
            var open = {};
            var rects = [];
            for (var i = 0; i < it.start.length; i++) {
                var yr = lay.y[it.row[i]];
                if (yr < 0) {
                    continue;
                }
                var x0 = Math.max(gut + (it.start[i] - range[0]) * scale, gut - 1);
                var x1 = Math.min(gut + (it.end[i] - range[0]) * scale, right + 1);
                if (x1 < gut || x0 > right) {
                    continue;
                }
                var key = it.row[i] * d.kinds.length + it.kind[i];
                var last = open[key];
                if (last && x0 <= last.x1 + 0.5 && x1 - x0 <= 4 && last.x1 - last.x0 <= 4) {
                    last.x1 = Math.max(last.x1, x1);
                    continue;
                }
                var rect = {x0: x0, x1: Math.max(x1, x0 + 1), row: it.row[i], kind: it.kind[i]};
                rects.push(rect);
                open[key] = rect;
            }
            o.push('<g clip-path="url(#' + pre + 'plot)">');
            var outline = rects.length < 5000;
            rects.forEach(function (b) {
                var hr = lay.h[b.row];
                var thin = hr < 10;
                var w = b.x1 - b.x0;
                var top = lay.y[b.row] + (thin ? 1 : 2);
                var h = hr - (thin ? 2 : 4);
                var wide = !thin && w > 4 && outline;
                o.push('<rect x="' + num(b.x0) + '" y="' + top + '" width="' + num(w) + '" height="' +
                    h + '" fill="' + fills[b.kind] + '"' +
                    (wide ? ' stroke="#000000" stroke-width="0.6"' : "") + "/>");
                var k = d.kinds[b.kind];
                if (wide && k.badge && w > 10 + 7 * k.badge.length && geo.rh >= 12) {
                    o.push('<rect x="' + num(b.x0 + 2) + '" y="' + (top + 2) + '" width="' +
                        (7 * k.badge.length + 4) + '" height="' + (geo.rh - 8) + '" fill="#ffffff"/>');
                    o.push('<text x="' + num(b.x0 + 4) + '" y="' + num(top + (geo.rh - 4) / 2) +
                        '" dominant-baseline="middle" font-family="DejaVu Sans, Verdana, sans-serif" ' +
                        'font-size="' + (geo.rh >= 18 ? 11 : 9) + '">' + esc(k.badge) + "</text>");
                }
            });
            // Hand-off arrows, as the canvas draws them.
            var fl = d.flows;
            if (v.flows && fl && fl.from.length) {
                for (var j = 0; j < fl.from.length; j++) {
                    var a = fl.from[j];
                    var b2 = fl.to[j];
                    if (fl.t1[j] < range[0] || fl.t0[j] > range[1] || lay.y[a] < 0 || lay.y[b2] < 0) {
                        continue;
                    }
                    o.push('<line x1="' + num(gut + (fl.t0[j] - range[0]) * scale) + '" y1="' +
                        num(lay.y[a] + lay.h[a] / 2) + '" x2="' + num(gut + (fl.t1[j] - range[0]) * scale) +
                        '" y2="' + num(lay.y[b2] + lay.h[b2] / 2) + '" stroke="' +
                        (fl.granted[j] ? "#7a1fa2" : "#b8860b") + '" stroke-width="1.5"' +
                        (fl.granted[j] ? "" : ' stroke-dasharray="4 3"') +
                        ' marker-end="url(#' + pre + 'head)"/>');
                }
            }
            o.push("</g>");
            (d.marks || []).forEach(function (m) {
                var x = gut + (m.us - range[0]) * scale;
                if (x < gut || x > right) {
                    return;
                }
                o.push('<line x1="' + num(x) + '" y1="' + geo.top + '" x2="' + num(x) + '" y2="' +
                    geo.height + '" stroke="#d55e00" stroke-width="2" stroke-dasharray="5 3"/>');
                o.push('<text x="' + num(x + 3) + '" y="' + Math.max(geo.top - 12, 0) +
                    '" fill="#d55e00" font-size="10" dominant-baseline="hanging">' +
                    esc(m.label) + "</text>");
            });
            var cx = cursor[side];
            if (typeof cx === "number" && cx >= range[0] && cx <= range[1]) {
                var cp = toPx(v, geo, cx);
                o.push('<rect class="cursor" x="' + num(cp - 1.5) + '" y="' + geo.top +
                    '" width="3" height="' + num(axisY - geo.top) + '" fill="#000000"/>');
                o.push('<path d="M' + num(cp - 6) + " 0L" + num(cp + 6) + " 0L" + num(cp) + " " +
                    (geo.top + 4) + 'z" fill="#000000"/>');
            }
            o.push("</svg>");
            return o.join("");
        }

        window.addEventListener("resize", redrawAll);
        return {setData: setData, setCursor: setCursor, zoom: zoom, pan: pan, itemsAt: itemsAt,
                select: select, toSvg: toSvg,
                active: function () { return !!range && Object.keys(views).length > 0; }};
    })();
})();
