/* vmaviz: keys 1-9 pick a thread when "Be the scheduler" is on (vmaviz/ui/race_callbacks.py).
 *
 * The key's number goes to the #bts-key store; the server maps it to the n-th
 * runnable thread it listed at the cursor, so the page and the keys agree on
 * the order. Keys typed into a field (the jump box, the explorer's bounds) are
 * left alone.
 */
(function () {
    "use strict";

    function schedulerOn() {
        var box = document.querySelector("#bts-on input[type=checkbox]");
        return Boolean(box && box.checked);
    }

    document.addEventListener("keydown", function (ev) {
        if (ev.ctrlKey || ev.metaKey || ev.altKey || !/^[1-9]$/.test(ev.key)) {
            return;
        }
        var tag = (ev.target && ev.target.tagName || "").toLowerCase();
        if (tag === "input" || tag === "textarea" || tag === "select") {
            return;
        }
        if (!schedulerOn() || !(window.dash_clientside && window.dash_clientside.set_props)) {
            return;
        }
        ev.preventDefault();
        window.dash_clientside.set_props("bts-key", {data: {n: Number(ev.key), at: Date.now()}});
    });
}());
