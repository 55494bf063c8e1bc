// Shows the hub's WebSocket address and whether it answers.
const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
document.getElementById("ws-url").textContent = url;
const status = document.getElementById("status");
const socket = new WebSocket(url);
socket.onopen = () => { status.textContent = "reachable"; socket.close(); };
socket.onerror = () => { status.textContent = "not reachable"; };
