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

    /* Clientside callbacks (registered in vmaviz/ui/callbacks.py). */
    window.dash_clientside = Object.assign({}, window.dash_clientside, {
        vmaviz: {
            /* Step buttons, keys and the play timer at "step" granularity, in the
             * browser: each click counts from the cursor the previous one set, however
             * fast they come. Function/operation moves go to the server. */
            step: function (f1, b1, f10, b10, tick, cursor, info, gran, paused, seen) {
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
                if (!info || (gran && gran !== "step")) {
                    return [nu, nu, nu, nu, now];
                }
                var total = info.total || 0;
                var m = Math.max(0, Math.min(total, (cursor || 0) + delta));
                var stop = ticked && !paused && m >= total;
                return [
                    m === cursor ? nu : m,
                    m === cursor ? nu : m - 1,
                    stop ? true : nu,
                    stop ? "▶ Play" : nu,
                    now,
                ];
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
