/* vmaviz: the Lessons page (/lessons, vmaviz/ui/lessons.py: lessons_page).
 *
 * Marks each checkpoint answered in this browser (right ✓, wrong ✗) from the app's
 * own record (the dcc.Store "lesson-progress", kept in local storage), counts each
 * lesson's answers, and points "continue" at the first checkpoint not answered yet.
 * Dash serves every file of assets/ to the app's page as well: there, with no
 * #lessons-page, this does nothing.
 */
(function () {
    "use strict";

    function progress() {
        try {
            var data = JSON.parse(window.localStorage.getItem("lesson-progress") || "null");
            return data && typeof data === "object" ? data : {};
        } catch (e) {
            return {};
        }
    }

    function start() {
        var page = document.getElementById("lessons-page");
        if (!page) {
            return;
        }
        var done = progress();
        var marks = page.querySelectorAll(".mark[data-lesson][data-checkpoint]");
        var counts = {};
        var next = null;
        for (var i = 0; i < marks.length; i++) {
            var m = marks[i];
            var lesson = m.getAttribute("data-lesson");
            var answer = (done[lesson] || {})[m.getAttribute("data-checkpoint")];
            var c = counts[lesson] = counts[lesson] || {answered: 0, total: 0};
            c.total += 1;
            if (answer === "right" || answer === "wrong") {
                c.answered += 1;
                m.textContent = answer === "right" ? "✓" : "✗";
                m.className = "mark " + answer;
                m.title = answer === "right" ? "answered right" : "answered wrong";
            } else if (!next) {
                next = m;
            }
        }
        var spans = page.querySelectorAll(".lesson-done[data-lesson]");
        for (var j = 0; j < spans.length; j++) {
            var k = counts[spans[j].getAttribute("data-lesson")];
            if (k && k.answered) {
                spans[j].textContent = "Answered " + k.answered + " of " + k.total + ".";
            }
        }
        var go = document.getElementById("lessons-continue");
        var anyDone = Object.keys(counts).some(function (l) { return counts[l].answered > 0; });
        if (!go || !anyDone) {
            return;
        }
        if (next) {
            var link = next.parentNode.querySelector("a");
            var entry = next.closest(".lesson-entry");
            var title = entry && entry.querySelector("h2");
            go.href = link.getAttribute("href");
            go.textContent = "Continue: " + (title ? title.textContent : "the next lesson") +
                ", checkpoint " + next.getAttribute("data-checkpoint");
        } else {
            go.textContent = "Every checkpoint is answered: start again from lesson 1";
        }
    }

    if (document.readyState === "loading") {
        document.addEventListener("DOMContentLoaded", start);
    } else {
        start();
    }
})();
