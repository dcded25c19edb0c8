/* Thread-level stepping keys (vmaviz/ui/thread_step.py): T / Shift+T step the
 * selected thread forward / back, O steps over (to the return of its current
 * kernel function), U steps out (to its caller's return), ] and [ move by the
 * thread's operations. Each key presses its button, so keys and clicks take one
 * path (the button's callback sends a nav-request to the server). */
(function () {
    "use strict";
    var KEYS = {t: "ts-step", T: "ts-back", o: "ts-over", u: "ts-out", "]": "ts-next_op", "[": "ts-prev_op"};

    function typing(el) {
        if (!el) {
            return false;
        }
        var tag = (el.tagName || "").toLowerCase();
        if (tag === "input" || tag === "textarea" || tag === "select" || el.isContentEditable) {
            return true;
        }
        var role = el.getAttribute && el.getAttribute("role");
        return role === "combobox" || role === "listbox" || role === "option" || role === "slider";
    }

    document.addEventListener("keydown", function (ev) {
        if (ev.defaultPrevented || ev.altKey || ev.ctrlKey || ev.metaKey || typing(ev.target)) {
            return;
        }
        var id = KEYS[ev.key];
        if (!id) {
            return;
        }
        var el = document.getElementById(id);
        if (el && !el.disabled) {
            ev.preventDefault();
            el.click();
        }
    }, true);
})();
