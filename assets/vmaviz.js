/* vmaviz: keyboard stepping, the step's panels (render), the timeline's wiring,
 * figures drawn only on screen, lazy sections, permalink and copy-link, accessible
 * names for dcc controls.
 *
 * Served by Dash from assets/ (no CDN), after assets/lanes.js (the timeline's canvas
 * renderer). Keys:
 *   ArrowRight or "."   forward one (Shift: ten)      ArrowLeft or ","   back one (Shift: ten)
 *   Space               play / pause                  Home / End         first / last step
 *   W / S               zoom the timeline             A / D              pan it
 * Keys typed into an input, a dropdown or a slider are left alone, and a handled key
 * never scrolls the page (preventDefault).
 */
(function () {
    "use strict";

    /* The timeline's canvas renderer (assets/lanes.js, loaded first). */
    var Lanes = window.vmavizLanes;

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
            if (Nav.move(ev.shiftKey ? 10 : 1)) {
                ev.preventDefault();
                return;
            }
        } else if (key === "ArrowLeft" || key === "," || key === "<") {
            id = ev.shiftKey ? "step-back10" : "step-back";
            if (Nav.move(ev.shiftKey ? -10 : -1)) {
                ev.preventDefault();
                return;
            }
        } else if (key === " " || key === "Spacebar") {
            // Space is play/pause, also on the stepping buttons (Enter still presses
            // those); other buttons, links and disclosure triangles keep their own Space.
            var tag = (target && target.tagName || "").toLowerCase();
            var stepper = target && target.closest && target.closest(".stepper");
            if ((tag === "button" || tag === "summary" || tag === "a") && !stepper) {
                return;
            }
            id = "play";
        } else if ((key === "w" || key === "s" || key === "a" || key === "d") && Lanes.active()) {
            // Perfetto's keys for the timeline: W/S zoom in/out, A/D pan.
            ev.preventDefault();
            if (key === "w") { Lanes.zoom(0.8); }
            if (key === "s") { Lanes.zoom(1.25); }
            if (key === "a") { Lanes.pan(-0.2); }
            if (key === "d") { Lanes.pan(0.2); }
            return;
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

    /* Step keys at "step" granularity move the cursor straight away (set_props on
     * the cursor store), without a button click and the clientside callback it
     * fires: each hop through Dash's callback machinery cost 15-45 ms before the
     * step's request even left. The cursor is mirrored here from every drawn step
     * (render: the server's cursor and total) and from the button path (step). */
    var Nav = {
        cursor: null,
        total: null,
        pending: 0,
        last: null,
        granularity: function () {
            var on = document.querySelector("#granularity input:checked");
            return on ? on.value : "step";
        },
        move: function (delta) {
            var setp = window.dash_clientside && window.dash_clientside.set_props;
            if (Nav.cursor === null || Nav.total === null || !setp || Nav.granularity() !== "step") {
                return false;
            }
            Nav.go(Math.max(0, Math.min(Nav.total, Nav.cursor + delta)));
            return true;
        },
        /* Move the cursor to ``m`` now (a key, the scrubber): the cursor store is
         * set straight away, the scrubber shows it before the step is drawn. */
        go: function (m) {
            var setp = window.dash_clientside && window.dash_clientside.set_props;
            if (!setp || m === Nav.cursor) {
                return;
            }
            Nav.cursor = m;
            Nav.last = m;
            Nav.pending += 1;
            setp("cursor", {data: m});
            Scrubber.show(m, Nav.total);
        },
        seen: function (cursor, total) {
            // From the server: adopt it unless our own moves are still on the way.
            if (typeof cursor !== "number" || typeof total !== "number") {
                return;
            }
            Nav.total = total;
            if (Nav.pending > 0) {
                if (cursor === Nav.last) {
                    Nav.pending = 0;
                }
                return;
            }
            Nav.cursor = cursor;
        },
        local: function (cursor, total) {
            // From the button path (the step callback knows Dash's cursor).
            Nav.cursor = cursor;
            Nav.total = total;
            Nav.pending = 0;
        },
        /* Play: a tick moved to ``cursor``; it is pending until drawn. */
        owed: false,
        sentAt: 0,
        sent: function (cursor, total) {
            Nav.cursor = cursor;
            Nav.total = total;
            Nav.last = cursor;
            Nav.pending = 1;
            Nav.sentAt = Date.now();
        },
        busy: function () {
            // A step that never came back (an error) does not stop Play for good.
            return Nav.pending > 0 && Date.now() - Nav.sentAt < 1000;
        },
        payOwed: function () {
            if (!Nav.owed || Nav.pending > 0) {
                return;
            }
            Nav.owed = false;
            var play = document.getElementById("play");
            if (play && play.textContent.indexOf("Pause") >= 0) {
                Nav.sentAt = Date.now();
                Nav.move(1);
            }
        },
    };

    /* The input ``id``, made (with ``props`` and ``attrs``) in the Dash box
     * ``boxId`` the first time it is asked for; null before the box is mounted. */
    function inputIn(boxId, id, props, attrs) {
        var el = document.getElementById(id);
        var box = document.getElementById(boxId);
        if (el || !box) {
            return el;
        }
        el = document.createElement("input");
        el.id = id;
        Object.keys(props).forEach(function (k) { el[k] = props[k]; });
        Object.keys(attrs).forEach(function (k) { el.setAttribute(k, attrs[k]); });
        box.appendChild(el);
        return el;
    }

    /* The scrubber: a native range input (vmaviz/ui/layout.py), 0 (the initial
     * state) to the last step run. It shows the drawn cursor (render) and a user's
     * move sets the cursor (Nav.go); it is not a Dash input, so that following the
     * cursor costs no callback. Arrow keys on it move it one step, as a slider's do. */
    var Scrubber = {
        el: function () {
            return inputIn("scrubber-box", "scrubber", {
                type: "range", className: "scrubber", min: "0", max: "0", step: "1",
                value: "0", title: "drag, or focus it and use the arrow keys",
            }, {"aria-valuetext": "initial state"});
        },
        show: function (cursor, total) {
            var el = Scrubber.el();
            if (!el || typeof cursor !== "number" || typeof total !== "number") {
                return;
            }
            if (el.max !== String(total)) {
                el.max = String(total);
            }
            if (document.activeElement !== el || !Scrubber.dragging) {
                el.value = String(cursor);
            }
            el.setAttribute("aria-valuetext", cursor === 0 ? "initial state" :
                "step " + (cursor - 1) + " of " + Math.max(total - 1, 0));
        },
        dragging: false,
    };
    document.addEventListener("input", function (ev) {
        if (ev.target && ev.target.id === "scrubber") {
            Scrubber.dragging = true;
        }
    }, true);
    document.addEventListener("change", function (ev) {
        var el = ev.target;
        if (!el || el.id !== "scrubber") {
            return;
        }
        Scrubber.dragging = false;
        var m = parseInt(el.value, 10);
        if (!isNaN(m) && Nav.total !== null) {
            Nav.go(Math.max(0, Math.min(Nav.total, m)));
        }
    }, true);

    /* The header's "Glossary" link opens the glossary as well as scrolling to it
     * (once it is mounted: see lazy sections below). */
    var openGlossary = false;
    function glossaryOpen() {
        var box = document.querySelector("#glossary details");
        if (box) {
            box.open = true;
            openGlossary = false;
        }
    }
    document.addEventListener("click", function (ev) {
        var link = ev.target && ev.target.closest && ev.target.closest("#glossary-link");
        if (!link) {
            return;
        }
        openGlossary = true;
        mountLazy(["glossary"]);
        glossaryOpen();
    });

    /* Lazy sections (vmaviz/ui/layout.py: lazy_slot): asked for once, when they
     * come within a screen of the window or a link goes to them. */
    var lazyAsked = {};
    var lazyIO = null;
    function mountLazy(names) {
        var fresh = names.filter(function (n) { return !lazyAsked[n]; });
        if (!fresh.length || !window.dash_clientside || !window.dash_clientside.set_props) {
            return;
        }
        fresh.forEach(function (n) { lazyAsked[n] = true; });
        window.dash_clientside.set_props("lazy-open", {data: fresh});
    }
    var loadedAt = Date.now();
    function watchLazy() {
        // Before the first run is drawn the page is short and every slot looks near:
        // wait for the lanes (or a few seconds, if the run failed to load).
        var drawn = typeof Lanes !== "undefined" && Lanes.active();
        if (!drawn && Date.now() - loadedAt < 5000) {
            window.setTimeout(watchLazy, 500);
            return;
        }
        if (!("IntersectionObserver" in window)) {
            mountLazy(["glossary", "results-slot"]);
            return;
        }
        if (!lazyIO) {
            lazyIO = new IntersectionObserver(function (entries) {
                var names = [];
                entries.forEach(function (e) {
                    if (e.isIntersecting) {
                        names.push(e.target.getAttribute("data-lazy"));
                    }
                });
                if (names.length) {
                    mountLazy(names);
                }
            }, {rootMargin: "600px 0px"});
        }
        var els = document.querySelectorAll("[data-lazy]");
        for (var i = 0; i < els.length; i++) {
            if (!els[i].__vmavizLazy) {
                els[i].__vmavizLazy = true;
                lazyIO.observe(els[i]);
            }
        }
    }
    window.addEventListener("hashchange", function () {
        var id = window.location.hash.slice(1);
        if (id === "glossary" || id === "results-slot") {
            mountLazy([id]);
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
                var el = inner[j];
                var type = (el.getAttribute("type") || "").toLowerCase();
                if (type === "radio" || type === "checkbox") {
                    // An option is named by its own label ("per-VMA", "mmap_lock"); the
                    // group's name is on the group.
                    continue;
                }
                if (!el.getAttribute("aria-label") && !el.getAttribute("aria-labelledby")) {
                    el.setAttribute("aria-label", label);
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
            watchFigures();
            watchLazy();
            if (openGlossary) {
                glossaryOpen();
            }
        });
    });
    /* Which figures are in or near the window, for figureGate: a figure far below
     * the stepper is not redrawn on every step, only when it comes into view. */
    var shown = {};
    var watched = typeof WeakSet === "function" ? new WeakSet() : null;
    var seenIO = null;
    function figureName(el) {
        if (el.id === "counters-graph") {
            return "counters";
        }
        try {
            var id = JSON.parse(el.id);
            return id.type + ":" + id.side;
        } catch (e) {
            return null;
        }
    }
    /* The figures a step asked for (render): given to figureGate only when one of
     * them is on screen, or comes into view (publishShown), so that a step whose
     * figures are all off screen costs no callback for them. */
    var Figures = {
        published: false,
        held: null,
        request: function (req) {
            if (!req) {
                // Every figure is as drawn: nothing is owed.
                Figures.held = null;
                return;
            }
            var now = !Figures.published || Object.keys(req).some(function (n) {
                return shown[n];
            });
            Figures.held = req;
            if (now) {
                Figures.flush();
            }
        },
        flush: function () {
            var req = Figures.held;
            Figures.held = null;
            if (req && window.dash_clientside && window.dash_clientside.set_props) {
                window.dash_clientside.set_props("figure-request", {data: req});
            }
        },
    };
    function publishShown() {
        Figures.published = true;
        Figures.flush();
        if (window.dash_clientside && window.dash_clientside.set_props) {
            window.dash_clientside.set_props("figures-visible", {
                data: Object.keys(shown).filter(function (k) { return shown[k]; }).sort(),
            });
        }
    }
    function watchFigures() {
        if (!("IntersectionObserver" in window)) {
            return;
        }
        if (!seenIO) {
            seenIO = new IntersectionObserver(function (entries) {
                var changed = false;
                entries.forEach(function (e) {
                    var name = figureName(e.target);
                    if (name && shown[name] !== e.isIntersecting) {
                        shown[name] = e.isIntersecting;
                        changed = true;
                    }
                });
                if (changed) {
                    publishShown();
                }
            }, {rootMargin: "300px 0px"});
        }
        var els = document.querySelectorAll(
            "#counters-graph, [id*='\"type\":\"address-space\"'], [id*='\"type\":\"maple-tree\"']"
        );
        for (var i = 0; i < els.length; i++) {
            if (watched && !watched.has(els[i])) {
                watched.add(els[i]);
                seenIO.observe(els[i]);
            }
        }
    }

    function start() {
        Scrubber.el();
        linkField();
        labelControls(document);
        watchFigures();
        watchLazy();
        observer.observe(document.body, { childList: true, subtree: true });
    }
    if (document.readyState === "loading") {
        document.addEventListener("DOMContentLoaded", start);
    } else {
        start();
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
        /* Measured in the next frame: reading offsetTop here, between the step's
         * DOM writes, forced a layout of the whole page that the frame then did
         * again (about 12 ms a step on a big run). */
        window.requestAnimationFrame(function () {
            if (!row.isConnected) {
                return;
            }
            var top = row.offsetTop - box.offsetTop;
            if (redrawn || top < box.scrollTop || top + row.offsetHeight > box.scrollTop + box.clientHeight) {
                box.scrollTop = Math.max(0, top - box.clientHeight / 2);
            }
        });
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
            // What the step did is told by the narration, far above the log: bring it
            // into view (below the sticky stepper).
            var narration = document.querySelector("[id*='\"type\":\"narration\"']");
            if (narration && narration.scrollIntoView) {
                narration.scrollIntoView({block: "start", behavior: "smooth"});
            }
        }
    });

    /* The permalink for a query string: the address bar follows it (replaceState),
     * with what the browser keeps in the link (an edited scenario, the presenter
     * layout: assets/editor.js). */
    function linkOf(search) {
        if (window.VmavizEditor) {
            search = window.VmavizEditor.extend(search);
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
    }
    /* The Share box's link field: a read-only input put in its box here
     * (vmaviz/ui/layout.py), not a Dash input, so that a step's link is written
     * without a round of the renderer's updates. */
    function linkField() {
        return inputIn("permalink-box", "permalink",
                       {type: "text", className: "permalink", readOnly: true}, {});
    }
    /* A link, in the address bar and the Share field. */
    function showLink(search) {
        var url = linkOf(search);
        var field = linkField();
        if (field && field.value !== url) {
            field.value = url;
        }
    }
    /* For assets/editor.js: the link again after the editor or the presenter
     * layout changed what it carries. */
    window.VmavizLink = {show: showLink};

    /* Clientside callbacks (registered in vmaviz/ui/callbacks.py). */
    window.dash_clientside = Object.assign({}, window.dash_clientside, {
        vmaviz: {
            /* Step buttons, keys and the play timer at "step" granularity, in the
             * browser: each click counts from the cursor the previous one set, however
             * fast they come. Function/operation moves go to the server. */
            step: function (f1, b1, f10, b10, first, last, tick, cursor, info, gran,
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
                        // Play moves one step a call, however many ticks Dash merged
                        // while the last step was drawn: a merged tick is not a skip.
                        delta += (id === "play-timer" ? 1 : n) * moves[id];
                        ticked = ticked || id === "play-timer";
                    }
                });
                if (!info) {
                    return [nu, nu, nu, now, nu];
                }
                var m = null;
                var onlyTick = false;
                if (fired.indexOf("step-start") >= 0) {
                    m = 0;
                } else if (fired.indexOf("step-end") >= 0) {
                    m = total;
                } else if (gran && gran !== "step") {
                    // Function/operation moves need the trace: the server makes them.
                    if (delta === 0) {
                        return [nu, nu, nu, now, nu];
                    }
                    return [nu, nu, nu, now, {move: delta, play: ticked, at: Date.now()}];
                } else {
                    // A Play tick alone.
                    onlyTick = ticked && delta === 1 && fired.every(function (id) {
                        return id === "play-timer";
                    });
                    if (onlyTick && Nav.busy()) {
                        // Play: the step before is not drawn yet. Do not overtake it
                        // (its view would never be seen); move once it is (render).
                        Nav.owed = true;
                        return [nu, nu, nu, now, nu];
                    }
                    m = Math.max(0, Math.min(total, (cursor || 0) + delta));
                }
                var stop = ticked && !paused && m >= total;
                if (onlyTick) {
                    Nav.sent(m, total);
                } else {
                    Nav.local(m, total);
                }
                Scrubber.show(m, total);
                return [
                    m === cursor ? nu : m,
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
                Nav.seen(data.cursor, data.total);
                Nav.payOwed();
                renderViews(data.html || {}, 0);
                markLogRow(data.log_current, data.html && data.html["event-log"] !== undefined);
                /* What this step changed (assets/editor.js), marked on the panels
                 * just put in place. */
                if (window.VmavizEditor) {
                    window.VmavizEditor.markChanges(data);
                }
                /* The rest of a step (vmaviz/ui/callbacks.py: step_views): the
                 * scrubber, the timeline cursor, the link, the figures on screen,
                 * and the scheduler's list when it is on. Done here rather than by
                 * callbacks of their own, each of which costs the renderer a round of
                 * updates of every component on the page. */
                if (typeof data.cursor === "number") {
                    Scrubber.show(Nav.pending > 0 ? Nav.cursor : data.cursor, data.total);
                }
                if (data.cursor_x) {
                    Lanes.setCursor(data.cursor_x);
                }
                if (data.search) {
                    showLink(data.search);
                }
                if ("figures" in data) {
                    Figures.request(data.figures);
                }
                var bts = document.querySelector("#bts-on input[type=checkbox]");
                if (bts && bts.checked && typeof data.cursor === "number" &&
                        window.dash_clientside.set_props) {
                    window.dash_clientside.set_props("bts-cursor", {data: data.cursor});
                }
                return window.dash_clientside.no_update;
            },
            /* The figures a step asked for that are on screen (or near it); the
             * others wait until they scroll into view. */
            figureGate: function (request, visible, sent) {
                var nu = window.dash_clientside.no_update;
                if (!request) {
                    return nu;
                }
                var on = {};
                (visible || []).forEach(function (n) { on[n] = true; });
                sent = sent || {};
                var go = {};
                var any = false;
                Object.keys(request).forEach(function (name) {
                    if ((visible === null || on[name]) && sent[name] !== request[name]) {
                        go[name] = request[name];
                        any = true;
                    }
                });
                return any ? go : nu;
            },
            /* The lanes of every timeline on the page (one Store per side). */
            lanes: function () {
                var ctx = window.dash_clientside.callback_context;
                Lanes.setData((ctx.inputs_list && ctx.inputs_list[0]) || []);
                return window.dash_clientside.no_update;
            },
            /* The permalink: this page's URL with the query string of the view. */
            permalink: function (search) {
                if (search) {
                    showLink(search);
                }
                return window.dash_clientside.no_update;
            },
            /* Copy the permalink: the Clipboard API, else select the visible field. */
            copyLink: function () {
                var field = linkField();
                var url = field ? field.value : "";
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
