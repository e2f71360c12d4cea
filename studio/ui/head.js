// Runs in <head>, before Gradio boots.
// 1. Language: Gradio's i18n follows navigator.language and keeps no choice of its own. The studio's switch
//    stores the choice; this script makes navigator.language report it (normalised: zh* -> zh-CN) so every
//    static label renders in it, and mirrors it in a cookie for the server.
// 2. Keyboard-first rating: 2/j, 1/k, 0/l rate; s skips; u undoes; n jumps to the note field.
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

  var keys = { "2": "rs-rate-2", "j": "rs-rate-2", "1": "rs-rate-1", "k": "rs-rate-1", "0": "rs-rate-0",
               "l": "rs-rate-0", "s": "rs-skip", "u": "rs-undo" };
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
      var note = document.querySelector("#rs-note textarea, #rs-note input");
      if (visible(note)) { e.preventDefault(); note.focus(); }
      return;
    }
    var id = keys[key];
    if (!id) return;
    var host = document.getElementById(id);
    var button = host && (host.tagName === "BUTTON" ? host : host.querySelector("button"));
    if (visible(button) && !button.disabled) { e.preventDefault(); button.click(); }
  });
})();
