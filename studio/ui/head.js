// Runs in <head>, before Gradio boots.
// 1. Language: Gradio's i18n follows navigator.language and keeps no choice of its own. The studio's switch
//    stores the choice; this script makes navigator.language report it (normalised: zh* -> zh-CN) so every
//    static label renders in it, and mirrors it in a cookie for the server.
// 2. Keyboard-first rating: 2/j, 1/k, 0/l rate in ② (and set the final label in ④); s skips; u undoes (in ④:
//    the expert's last decision); g opens and closes the guidelines (②); n jumps to the note field (④: the reason
//    field). A key acts only on the tab on screen (its buttons are the visible ones), never while typing in a field.
(function () {
  function normalise(lang) {
    lang = (lang || "en").toLowerCase();
    return lang.indexOf("zh") === 0 ? "zh-CN" : "en";
  }
  var saved = null;
  try { saved = localStorage.getItem("studio-lang"); } catch (e) {}
  var lang = normalise(saved || navigator.language || (navigator.languages || [])[0]);
  try {
    Object.defineProperty(Navigator.prototype, "language", { get: function () { return lang; }, configurable: true });
    Object.defineProperty(Navigator.prototype, "languages", { get: function () { return [lang]; }, configurable: true });
  } catch (e) {}
  document.cookie = "studio_lang=" + lang + ";path=/;SameSite=Lax";
  document.documentElement.lang = lang;
  window.studioLang = function () { return lang; };
  window.studioSetLang = function (next) {
    try { localStorage.setItem("studio-lang", normalise(next)); } catch (e) {}
    if (normalise(next) !== lang) { location.reload(); }
    return next;
  };

  // A key presses the first of its buttons that is on screen: rating in ② Annotate, the final label in ④ Adjudicate.
  var keys = { "2": ["rs-rate-2", "rs-final-2"], "j": ["rs-rate-2", "rs-final-2"],
               "1": ["rs-rate-1", "rs-final-1"], "k": ["rs-rate-1", "rs-final-1"],
               "0": ["rs-rate-0", "rs-final-0"], "l": ["rs-rate-0", "rs-final-0"],
               "s": ["rs-skip", "rs-adj-skip"], "u": ["rs-undo", "rs-adj-undo"], "g": ["rs-guidelines-btn"] };
  function visible(el) { return el && el.offsetParent !== null; }
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
    var target = e.target;
    var tag = target && target.tagName ? target.tagName.toLowerCase() : "";
    if (tag === "input" || tag === "textarea" || tag === "select" || (target && target.isContentEditable)) {
      if (e.key === "Escape" && target.blur) target.blur();
      return;
    }
    var key = (e.key || "").toLowerCase();
    if (key === "n") {
      var notes = document.querySelectorAll("#rs-note textarea, #rs-note input, #rs-reason textarea, #rs-reason input");
      for (var n = 0; n < notes.length; n++) {
        if (visible(notes[n])) { e.preventDefault(); notes[n].focus(); return; }
      }
      return;
    }
    var ids = keys[key] || [];
    for (var i = 0; i < ids.length; i++) {
      var host = document.getElementById(ids[i]);
      var button = host && (host.tagName === "BUTTON" ? host : host.querySelector("button"));
      if (visible(button) && !button.disabled) { e.preventDefault(); button.click(); return; }
    }
  });
})();

// 3. Gradio's own labels that its i18n does not reach (aria-label/title written into its components in English,
//    e.g. "Click to upload or drop files", "Copy table data"): the catalogue's `gradio.*` keys hold Gradio's
//    English text and its translation; Gradio hands the catalogue to the page (gradio_config.i18n_translations).
(function () {
  var lang = window.studioLang ? window.studioLang() : "en";
  if (lang === "en") return;
  var labels = null;
  function load() {
    var all = (window.gradio_config || {}).i18n_translations || {};
    var en = all.en || {}, here = all[lang] || {}, map = {};
    Object.keys(en).forEach(function (k) { if (k.indexOf("gradio.") === 0 && here[k]) map[en[k]] = here[k]; });
    return Object.keys(map).length ? map : null;
  }
  function fix(el) {
    if (!el || el.nodeType !== 1) return;
    ["aria-label", "title"].forEach(function (name) {
      var value = el.getAttribute(name);
      if (value && labels[value]) el.setAttribute(name, labels[value]);
    });
  }
  new MutationObserver(function (records) {
    if (!labels) {
      if (!(labels = load())) return;
      document.querySelectorAll("[aria-label],[title]").forEach(fix);  // what was drawn before the catalogue came
    }
    records.forEach(function (r) {
      if (r.type === "attributes") { fix(r.target); return; }
      r.addedNodes.forEach(function (node) {
        if (node.nodeType !== 1) return;
        fix(node);
        node.querySelectorAll("[aria-label],[title]").forEach(fix);
      });
    });
  }).observe(document.documentElement, {subtree: true, childList: true, attributes: true,
                                        attributeFilter: ["aria-label", "title"]});
})();

// 4. Gradio's progress overlay writes "processing | 5.4/0.3s" and "queue: 2/5 |" as literal English text (no i18n
//    key): the catalogue's `gradio.processing` and `gradio.queue` word them; only the status tracker's text nodes
//    (its meta-text, progress-text and eta elements) are touched, as Gradio sets and resets them.
(function () {
  var lang = window.studioLang ? window.studioLang() : "en";
  if (lang === "en") return;
  var words = null;
  function load() {
    var all = (window.gradio_config || {}).i18n_translations || {};
    var en = all.en || {}, here = all[lang] || {}, found = [];
    ["gradio.processing", "gradio.queue"].forEach(function (k) { if (en[k] && here[k]) found.push([en[k], here[k]]); });
    return found.length ? found : null;
  }
  var SCOPE = '[class*="meta-text"],[class*="progress-text"],[class*="eta"]';
  function fix(node) {
    if (node.nodeType !== 3 || !node.parentElement || !node.parentElement.closest(SCOPE)) return;
    var value = node.nodeValue || "", start = value.length - value.replace(/^\s+/, "").length;
    words.forEach(function (pair) {
      var rest = value.slice(start + pair[0].length);
      if (value.indexOf(pair[0], start) === start && /^(\s*\||:)/.test(rest)) {
        node.nodeValue = value.slice(0, start) + pair[1] + rest;
      }
    });
  }
  function walk(node) {
    if (node.nodeType === 3) { fix(node); return; }
    if (node.nodeType !== 1) return;
    var w = document.createTreeWalker(node, NodeFilter.SHOW_TEXT), n;
    while ((n = w.nextNode())) fix(n);
  }
  new MutationObserver(function (records) {
    if (!words && !(words = load())) return;
    records.forEach(function (r) {
      if (r.type === "characterData") { fix(r.target); return; }
      r.addedNodes.forEach(walk);
    });
  }).observe(document.documentElement, {subtree: true, childList: true, characterData: true});
})();
