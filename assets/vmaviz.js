/* vmaviz: keyboard stepping, permalink and copy-link, accessible names for dcc controls.
 *
 * Served by Dash from assets/ (no CDN). Keys:
 *   ArrowRight or "."   forward one (Shift: ten)      ArrowLeft or ","   back one (Shift: ten)
 *   Space               play / pause                  Home / End         first / last step
 * Keys typed into an input, a dropdown or a slider are left alone, and a handled key
 * never scrolls the page (preventDefault).
 */
(function () {
    "use strict";

    function isTyping(el) {
        if (!el || el === document.body) {
            return false;
        }
        var tag = (el.tagName || "").toLowerCase();
        if (tag === "input" || tag === "textarea" || tag === "select") {
            return true;
        }
        if (el.isContentEditable) {
            return true;
        }
        var role = el.getAttribute && el.getAttribute("role");
        return role === "slider" || role === "combobox" || role === "listbox" || role === "option";
    }

    function press(id) {
        var el = document.getElementById(id);
        if (el && !el.disabled) {
            el.click();
            return true;
        }
        return false;
    }

    function onKey(ev) {
        if (ev.defaultPrevented || ev.altKey || ev.ctrlKey || ev.metaKey) {
            return;
        }
        var target = ev.target;
        if (isTyping(target)) {
            return;
        }
        var key = ev.key;
        var id = null;
        if (key === "ArrowRight" || key === "." || key === ">") {
            id = ev.shiftKey ? "step-fwd10" : "step-fwd";
        } else if (key === "ArrowLeft" || key === "," || key === "<") {
            id = ev.shiftKey ? "step-back10" : "step-back";
        } else if (key === " " || key === "Spacebar") {
            // Space is play/pause, also on the stepping buttons (Enter still presses
            // those); other buttons, links and disclosure triangles keep their own Space.
            var tag = (target && target.tagName || "").toLowerCase();
            var stepper = target && target.closest && target.closest(".stepper");
            if ((tag === "button" || tag === "summary" || tag === "a") && !stepper) {
                return;
            }
            id = "play";
        } else if (key === "Home") {
            id = "step-start";
        } else if (key === "End") {
            id = "step-end";
        }
        if (id === null) {
            return;
        }
        ev.preventDefault();
        press(id);
    }

    document.addEventListener("keydown", onKey, true);

    /* The header's "Glossary" link opens the glossary as well as scrolling to it. */
    document.addEventListener("click", function (ev) {
        var link = ev.target && ev.target.closest && ev.target.closest("#glossary-link");
        if (!link) {
            return;
        }
        var box = document.querySelector("#glossary details");
        if (box) {
            box.open = true;
        }
    });

    /* dcc components take no aria-* props: copy the label of their .control wrapper
     * (data-aria-label) onto the focusable element inside. */
    function labelControls(root) {
        var groups = (root || document).querySelectorAll("[data-aria-label]");
        for (var i = 0; i < groups.length; i++) {
            var label = groups[i].getAttribute("data-aria-label");
            var inner = groups[i].querySelectorAll(
                "input, [role=slider], [role=combobox], button, [tabindex]"
            );
            for (var j = 0; j < inner.length; j++) {
                if (!inner[j].getAttribute("aria-label") && !inner[j].getAttribute("aria-labelledby")) {
                    inner[j].setAttribute("aria-label", label);
                }
            }
        }
    }
    var pending = false;
    var observer = new MutationObserver(function () {
        if (pending) {
            return;
        }
        pending = true;
        window.requestAnimationFrame(function () {
            pending = false;
            labelControls(document);
        });
    });
    function start() {
        labelControls(document);
        observer.observe(document.body, { childList: true, subtree: true });
    }
    if (document.readyState === "loading") {
        document.addEventListener("DOMContentLoaded", start);
    } else {
        start();
    }

    /* ---- timeline cursor overlay ---- */
    var cursorTimes = {};

    function placeOne(container, x) {
        var gd = container.querySelector(".js-plotly-plot");
        if (!gd || !gd._fullLayout || !gd._fullLayout.xaxis) {
            return;
        }
        if (!gd.__vmavizHooked && gd.on) {
            gd.__vmavizHooked = true;
            gd.on("plotly_afterplot", function () { placeCursors(cursorTimes); });
            gd.on("plotly_relayout", function () { placeCursors(cursorTimes); });
        }
        var line = container.querySelector(".timeline-cursor");
        if (!line) {
            line = document.createElement("div");
            line.className = "timeline-cursor";
            line.setAttribute("aria-hidden", "true");
            var host = gd.parentNode;
            if (getComputedStyle(host).position === "static") {
                host.style.position = "relative";
            }
            host.appendChild(line);
        }
        var fl = gd._fullLayout;
        var ax = fl.xaxis;
        var size = fl._size;
        var inRange = typeof x === "number" && x >= Math.min(ax.range[0], ax.range[1]) &&
            x <= Math.max(ax.range[0], ax.range[1]);
        line.setAttribute("data-x", typeof x === "number" ? String(x) : "");
        if (!inRange) {
            line.style.display = "none";
            return;
        }
        var px = size.l + ax.l2p(x);
        line.style.display = "block";
        line.style.left = (gd.offsetLeft + px - 1.5) + "px";
        line.style.top = (gd.offsetTop + size.t) + "px";
        line.style.height = size.h + "px";
    }

    function placeCursors(times) {
        cursorTimes = times;
        Object.keys(times).forEach(function (side) {
            var id = JSON.stringify({side: side, type: "timeline"});
            var container = document.getElementById(id);
            if (container) {
                placeOne(container, times[side]);
            }
        });
    }

    function renderViews(views, tries) {
        var missing = {};
        var left = 0;
        Object.keys(views).forEach(function (id) {
            var el = document.getElementById(id);
            if (el) {
                el.innerHTML = views[id];
            } else {
                missing[id] = views[id];
                left += 1;
            }
        });
        if (left && tries < 30) {
            window.requestAnimationFrame(function () { renderViews(missing, tries + 1); });
        }
    }

    /* The event log's current row: marked here, so that the page of rows is sent
     * only when the page changes. Kept in view inside the log's own scroll box
     * (never by scrolling the page). */
    function markLogRow(step, redrawn) {
        var box = document.getElementById("event-log");
        if (!box) {
            return;
        }
        var old = box.querySelectorAll(".log-row.current");
        for (var i = 0; i < old.length; i++) {
            old[i].classList.remove("current");
            old[i].removeAttribute("aria-current");
            var now = old[i].querySelector(".log-now");
            if (now) {
                now.parentNode.removeChild(now);
            }
        }
        var row = box.querySelector('.log-row[data-step="' + step + '"]');
        if (!row) {
            return;
        }
        row.classList.add("current");
        row.setAttribute("aria-current", "step");
        var mark = document.createElement("strong");
        mark.className = "log-now";
        mark.textContent = " ◀ now";
        row.appendChild(mark);
        var top = row.offsetTop - box.offsetTop;
        if (redrawn || top < box.scrollTop || top + row.offsetHeight > box.scrollTop + box.clientHeight) {
            box.scrollTop = Math.max(0, top - box.clientHeight / 2);
        }
    }

    /* Event-log rows: one listener for all of them, whatever the server re-renders. */
    document.addEventListener("click", function (ev) {
        var row = ev.target && ev.target.closest && ev.target.closest(".log-row[data-step]");
        if (!row || !window.dash_clientside || !window.dash_clientside.set_props) {
            return;
        }
        var step = parseInt(row.getAttribute("data-step"), 10);
        if (!isNaN(step)) {
            window.dash_clientside.set_props("log-click", {data: {step: step, at: Date.now()}});
        }
    });

    /* Clientside callbacks (registered in vmaviz/ui/callbacks.py). */
    window.dash_clientside = Object.assign({}, window.dash_clientside, {
        vmaviz: {
            /* Step buttons, keys and the play timer at "step" granularity, in the
             * browser: each click counts from the cursor the previous one set, however
             * fast they come. Function/operation moves go to the server. */
            step: function (f1, b1, f10, b10, first, last, tick, scrub, cursor, info, gran,
                            paused, seen) {
                var nu = window.dash_clientside.no_update;
                var now = {
                    "step-fwd": f1 || 0,
                    "step-back": b1 || 0,
                    "step-fwd10": f10 || 0,
                    "step-back10": b10 || 0,
                    "play-timer": tick || 0,
                };
                var moves = {
                    "step-fwd": 1,
                    "step-back": -1,
                    "step-fwd10": 10,
                    "step-back10": -10,
                    "play-timer": 1,
                };
                seen = seen || {};
                var total = (info && info.total) || 0;
                var fired = (window.dash_clientside.callback_context.triggered || []).map(
                    function (t) { return t.prop_id.split(".")[0]; }
                );
                // Clicks that came faster than the callback ran are coalesced by Dash:
                // count them from n_clicks, not from the number of calls.
                var delta = 0;
                var ticked = false;
                Object.keys(moves).forEach(function (id) {
                    var n = now[id] - (seen[id] || 0);
                    if (n > 0) {
                        delta += n * moves[id];
                        ticked = ticked || id === "play-timer";
                    }
                });
                if (!info) {
                    return [nu, nu, nu, nu, now, nu];
                }
                var m = null;
                if (fired.indexOf("step-start") >= 0) {
                    m = 0;
                } else if (fired.indexOf("step-end") >= 0) {
                    m = total;
                } else if (fired.indexOf("scrubber") >= 0 && delta === 0) {
                    // The scrubber shows the index of the last step run: cursor - 1.
                    if (scrub === null || scrub === undefined || scrub + 1 === cursor) {
                        return [nu, nu, nu, nu, now, nu];
                    }
                    m = Math.max(0, Math.min(total, scrub + 1));
                    return [m === cursor ? nu : m, nu, nu, nu, now, nu];
                } else if (gran && gran !== "step") {
                    // Function/operation moves need the trace: the server makes them.
                    if (delta === 0) {
                        return [nu, nu, nu, nu, now, nu];
                    }
                    return [nu, nu, nu, nu, now, {move: delta, at: Date.now()}];
                } else {
                    m = Math.max(0, Math.min(total, (cursor || 0) + delta));
                }
                var stop = ticked && !paused && m >= total;
                return [
                    m === cursor ? nu : m,
                    m === cursor ? nu : m - 1,
                    stop ? true : nu,
                    stop ? "▶ Play" : nu,
                    now,
                    nu,
                ];
            },
            /* The step's panels: {DOM id: HTML} from the server (only the changed
             * ones), each put in its place; ids not in the page yet (a new run's
             * views being mounted) are tried again on the next frames. */
            render: function (data) {
                data = data || {};
                renderViews(data.html || {}, 0);
                markLogRow(data.log_current, data.html && data.html["event-log"] !== undefined);
                return window.dash_clientside.no_update;
            },
            /* The timeline cursor: a line laid over each timeline's plot area at the
             * cursor's time (µs), moved without redrawing the figure. Re-placed after
             * every redraw or zoom of the figure (plotly_afterplot). */
            timelineCursor: function (times) {
                placeCursors(times || {});
                return window.dash_clientside.no_update;
            },
            /* The permalink: this page's URL with the query string of the view. */
            permalink: function (search) {
                if (!search) {
                    return window.dash_clientside.no_update;
                }
                var url = window.location.origin + window.location.pathname + search;
                if (window.location.search !== search) {
                    try {
                        window.history.replaceState(window.history.state, "", url);
                    } catch (e) {
                        /* a sandboxed frame: the link field still shows the URL */
                    }
                }
                return url;
            },
            /* Copy the permalink: the Clipboard API, else select the visible field. */
            copyLink: function (_clicks, url) {
                var field = document.getElementById("permalink");
                var box = document.getElementById("share");
                function fallback() {
                    if (box) {
                        box.open = true;
                    }
                    if (field) {
                        field.focus();
                        field.select();
                        try {
                            if (document.execCommand && document.execCommand("copy")) {
                                return "Link copied.";
                            }
                        } catch (e) {
                            /* fall through */
                        }
                    }
                    return "Select the link in the field and copy it (Ctrl+C).";
                }
                if (!url) {
                    return "No link yet.";
                }
                if (navigator.clipboard && window.isSecureContext) {
                    return navigator.clipboard.writeText(url).then(
                        function () {
                            return "Link copied.";
                        },
                        function () {
                            return fallback();
                        }
                    );
                }
                return fallback();
            },
        },
    });
})();
