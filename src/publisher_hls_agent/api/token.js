// The token stays in this tab: from the URL fragment (never sent to a server) or typed
// in, kept in sessionStorage, and sent only as an Authorization header to this agent
// (hls.js's requests included: never to a host a playlist names).
const tokenInput = document.getElementById("token");
const fromFragment = new URLSearchParams(location.hash.slice(1)).get("token");
if (fromFragment) {
  sessionStorage.setItem("token", fromFragment);
  history.replaceState(null, "", location.pathname);
}
tokenInput.value = sessionStorage.getItem("token") || "";
const auth = () => ({ Authorization: "Bearer " + tokenInput.value.trim() });
const authorize = (xhr, url) => {  // hls.js's xhrSetup
  if (new URL(url, location.href).origin === location.origin) {
    xhr.setRequestHeader("Authorization", auth().Authorization);
  }
};
function whenTokenChanges(then) {
  tokenInput.addEventListener("change", () => {
    sessionStorage.setItem("token", tokenInput.value.trim());
    then();
  });
}
