/* vmaviz: the in-page editor, look_at links, export for slides, presenter layout
 * (vmaviz/ui/editor.py, vmaviz/ui/look_at.py). Nothing here runs per step: the
 * handlers fire on the user's own clicks and key presses.
 */
(function () {
    "use strict";

    /* The editor's text goes to the server's check this long after the last key. */
    var CHECK_DELAY_MS = 400;
    var link = null;        /* {ref, yaml} of an edited scenario, from the server */
    var lastSearch = "";    /* the step's query string, as the server last sent it */

    function setProps(id, props) {
        var dc = window.dash_clientside;
        if (dc && dc.set_props) {
            dc.set_props(id, props);
        }
    }

    function presenterOn() {
        return document.body.classList.contains("presenter");
    }

    /* The permalink's query string with what the browser keeps: the edited scenario's
     * text (when the link names that upload) and the presenter layout. */
    function extend(search) {
        lastSearch = search || "";
        var params = new URLSearchParams(lastSearch.replace(/^\?/, ""));
        params.delete("yaml");
        params.delete("present");
        if (link && link.yaml && params.get("scenario") === link.ref) {
            params.set("yaml", link.yaml);
        }
        if (presenterOn()) {
            params.set("present", "1");
        }
        return "?" + params.toString();
    }

    /* Put the current link in the address bar and the link field again (by
     * assets/vmaviz.js, which writes every link; it calls extend). */
    function refreshLink() {
        var base = lastSearch || window.location.search;
        if (base && window.VmavizLink) {
            window.VmavizLink.show(base);
        }
    }

    /* ---- what changed: marks on the rows, cells and panels this step changed ---- */

    function slotOf(kind, side) {
        return document.getElementById(JSON.stringify({side: side, type: kind}));
    }

    function summary(c) {
        var parts = [];
        if (c.vma_count) {
            parts.push(c.vma_count + " VMA" + (c.vma_count > 1 ? "s" : ""));
        }
        if (c.gone && c.gone.length) {
            parts.push("gone: " + c.gone.join(", "));
        }
        if (c.locks) {
            parts.push(c.locks.join(", "));
        }
        if (c.threads && c.threads.length) {
            parts.push("threads " + c.threads.join(", "));
        }
        if (c.rcu) {
            parts.push("RCU");
        }
        if (c.tree && c.tree.length) {
            parts.push("maple nodes " + c.tree.map(function (i) { return "#" + i; }).join(", "));
        }
        if (c.counters) {
            parts.push(Object.keys(c.counters).map(function (k) {
                var v = c.counters[k];
                return k + " " + (v[0] === null || v[0] === undefined ? "—" : v[0]) + "→" + v[1];
            }).join(", "));
        }
        return parts.length ? "Changed: " + parts.join("; ") + "." : "Nothing in the views changed.";
    }

    function applyChanges(changed) {
        document.querySelectorAll(".changed, .changed-cell").forEach(function (el) {
            el.classList.remove("changed");
            el.classList.remove("changed-cell");
        });
        Object.keys(changed).forEach(function (side) {
            var c = changed[side] || {};
            var table = slotOf("vma-table", side);
            if (table && c.vmas) {
                table.querySelectorAll("tr").forEach(function (row) {
                    var th = row.querySelector("th");
                    var m = th && /vma(\d+)\s*$/.exec(th.textContent);
                    var cols = m && c.vmas[m[1]];
                    if (!cols) {
                        return;
                    }
                    row.classList.add("changed");
                    cols.forEach(function (i) {
                        if (row.children[i]) {
                            row.children[i].classList.add("changed-cell");
                        }
                    });
                });
            }
            var threads = slotOf("threads", side);
            if (threads && c.threads) {
                threads.querySelectorAll("tr").forEach(function (row) {
                    var th = row.querySelector("th");
                    if (th && c.threads.indexOf(th.textContent) >= 0) {
                        row.classList.add("changed");
                    }
                });
            }
            [["mmap-lock", c.locks], ["rcu", c.rcu]].forEach(function (pair) {
                var el = slotOf(pair[0], side);
                if (el && pair[1]) {
                    el.classList.add("changed");
                }
            });
            /* Inside the narration's slot (its last line): a sibling would take a
             * cell of the view's grid. The slot is redrawn on most steps, so the line
             * is added again here each time. */
            var narration = slotOf("narration", side);
            if (narration) {
                var strip = narration.querySelector(".changes-strip");
                if (!strip) {
                    strip = document.createElement("p");
                    strip.className = "changes-strip";
                    strip.setAttribute("data-side", side);
                    narration.appendChild(strip);
                }
                strip.textContent = Object.keys(c).length ? summary(c) : "";
            }
        });
    }

    /* Called by assets/vmaviz.js's render right after it has put the step's panels
     * in place, in the same task: a callback of its own on step-html could run
     * before the panels are replaced, and waiting frames for them delayed the
     * settled page by two frames a step. */
    function markChanges(data) {
        applyChanges((data && data.changed) || {});
    }

    window.VmavizEditor = {
        extend: extend,
        markChanges: markChanges,
        setLink: function (value) {
            link = value && typeof value === "object" ? value : null;
            refreshLink();
            return Date.now();
        },
    };

    /* ---- the editor: debounced check, gutter, errors that select their line ---- */
    var timer = null;
    document.addEventListener("input", function (ev) {
        if (!ev.target || ev.target.id !== "editor-text") {
            return;
        }
        var text = ev.target.value;
        if (timer) {
            clearTimeout(timer);
        }
        timer = setTimeout(function () {
            timer = null;
            setProps("editor-check", {data: text});
        }, CHECK_DELAY_MS);
    });
    document.addEventListener("scroll", function (ev) {
        if (ev.target && ev.target.id === "editor-text") {
            var g = document.getElementById("editor-gutter");
            if (g) {
                g.scrollTop = ev.target.scrollTop;
            }
        }
    }, true);

    function selectLine(n) {
        var area = document.getElementById("editor-text");
        if (!area) {
            return;
        }
        var lines = area.value.split("\n");
        var start = 0;
        for (var i = 0; i < n - 1 && i < lines.length; i++) {
            start += lines[i].length + 1;
        }
        var end = start + (lines[n - 1] || "").length;
        area.focus();
        area.setSelectionRange(start, end);
        var lh = parseFloat(window.getComputedStyle(area).lineHeight) || 16;
        area.scrollTop = Math.max(0, (n - 3) * lh);
    }

    document.addEventListener("click", function (ev) {
        var t = ev.target;
        if (!t || !t.closest) {
            return;
        }
        var err = t.closest(".editor-error[data-line]");
        if (err) {
            selectLine(parseInt(err.getAttribute("data-line"), 10));
            return;
        }
        /* A look_at link: go to its step as a click on the lanes does. */
        var look = t.closest(".look-at-link[data-step]");
        if (look) {
            ev.preventDefault();
            var step = parseInt(look.getAttribute("data-step"), 10);
            if (!isNaN(step)) {
                setProps("timeline-click", {
                    data: {side: look.getAttribute("data-side") || "left", step: step, at: Date.now()},
                });
            }
            return;
        }
        var btn = t.closest("#export-png, #export-svg");
        if (btn) {
            exportViews(btn.id === "export-svg" ? "svg" : "png");
            return;
        }
        if (t.closest("#presenter")) {
            document.body.classList.toggle("presenter");
            var p = document.getElementById("presenter");
            if (p) {
                p.setAttribute("aria-pressed", presenterOn() ? "true" : "false");
            }
            refreshLink();
        }
    });

    /* ---- export for slides ---- */

    function download(name, url) {
        var a = document.createElement("a");
        a.href = url;
        a.download = name;
        a.style.display = "none";
        document.body.appendChild(a);
        a.click();
        a.remove();
    }

    /* One timeline as one canvas: the lanes and their overlay (cursor, arrows). */
    function lanesCanvas(box) {
        var base = box.querySelector("canvas.lanes-base");
        if (!base || !base.width || !base.height) {
            return null;
        }
        var out = document.createElement("canvas");
        out.width = base.width;
        out.height = base.height;
        var ctx = out.getContext("2d");
        ctx.fillStyle = "#ffffff";
        ctx.fillRect(0, 0, out.width, out.height);
        ctx.drawImage(base, 0, 0);
        var over = box.querySelector("canvas.lanes-over");
        if (over && over.width) {
            ctx.drawImage(over, 0, 0, out.width, out.height);
        }
        return out;
    }

    /* The timeline as a vector SVG, built from the lanes' data when asked
     * (assets/lanes.js: toSvg); null when the lanes cannot (then canvasSvg). */
    function lanesSvg(box) {
        var side = null;
        try {
            side = JSON.parse(box.id).side;
        } catch (e) {
            return null;
        }
        var lanes = window.vmavizLanes;
        var svg = lanes && lanes.toSvg ? lanes.toSvg(side) : null;
        return svg ? "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svg) : null;
    }

    /* The timeline as SVG when the lanes have no data to build it from: the canvas
     * image inside an SVG document. */
    function canvasSvg(canvas) {
        var w = canvas.width;
        var h = canvas.height;
        var svg = '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"' +
            ' width="' + w + '" height="' + h + '" viewBox="0 0 ' + w + " " + h + '">' +
            '<image width="' + w + '" height="' + h + '" xlink:href="' +
            canvas.toDataURL("image/png") + '"/></svg>';
        return "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svg);
    }

    function exportViews(format) {
        var status = document.getElementById("export-status");
        var types = [];
        var jobs = [];
        var n = 0;
        document.querySelectorAll(".lanes").forEach(function (box) {
            var c = lanesCanvas(box);
            if (!c) {
                return;
            }
            n += 1;
            var url = format === "svg" ? (lanesSvg(box) || canvasSvg(c)) : c.toDataURL("image/png");
            types.push(url.slice(5, url.search(/[;,]/)));
            download("vmaviz-timeline-" + n + "." + format, url);
        });
        /* The figures drawn (a figure not drawn yet is off screen: not exported). */
        if (window.Plotly) {
            document.querySelectorAll(".js-plotly-plot").forEach(function (gd) {
                if (!gd.data || !gd.offsetWidth) {
                    return;
                }
                n += 1;
                var name = "vmaviz-figure-" + n + "." + format;
                jobs.push(window.Plotly.toImage(gd, {format: format, scale: format === "png" ? 2 : 1})
                    .then(function (url) {
                        types.push(url.slice(5, url.search(/[;,]/)));
                        download(name, url);
                    }));
            });
        }
        Promise.all(jobs).then(function () {
            if (status) {
                status.setAttribute("data-types", types.join(" "));
                status.textContent = types.length
                    ? "Exported " + types.length + " image(s) as " + format.toUpperCase() + "."
                    : "Nothing drawn to export yet.";
            }
        });
    }

    /* A permalink's presenter layout, restored when the page opens. */
    if (/(^|[?&])present=1(&|$)/.test(window.location.search)) {
        var on = function () {
            document.body.classList.add("presenter");
        };
        if (document.body) {
            on();
        } else {
            document.addEventListener("DOMContentLoaded", on);
        }
    }
})();
