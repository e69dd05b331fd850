package wranglerdev

import (
	"encoding/json"
	"fmt"
	"net"
	"time"

	"golang.org/x/net/websocket"
)

// disableNetworkView turns off DevTools' network view of the Worker, which
// wrangler dev's inspector proxy turns on (Network.enable) whenever it
// connects to workerd. With it on, workerd decodes every subrequest body
// labelled exactly "gzip" or "br" for DevTools as the body arrives, whether
// or not the Worker reads it, and a corrupt one aborts the whole workerd
// process (workerd 1.20260426: "Fatal uncaught kj::Exception:
// kj/compat/gzip.c++:81: ... incorrect header check"). A deployed Worker
// has no inspector session, so the suite runs the Worker as deployed. It
// talks to the proxy as DevTools would, on the --inspector-port, and hangs
// up: the proxy tells workerd only Debugger.disable when DevTools leaves.
func disableNetworkView(port int, timeout time.Duration) error {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cfg, err := websocket.NewConfig("ws://"+addr+"/ws", "http://localhost")
	if err != nil {
		return err
	}
	// The proxy answers the upgrade only once it is connected to workerd:
	// the deadline bounds the handshake too.
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return fmt.Errorf("connecting to the inspector proxy: %w", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	ws, err := websocket.NewClient(cfg, conn)
	if err != nil {
		return fmt.Errorf("connecting to the inspector proxy: %w", err)
	}
	defer ws.Close()
	const id = 1
	if err := websocket.JSON.Send(ws, map[string]any{"id": id, "method": "Network.disable"}); err != nil {
		return fmt.Errorf("sending Network.disable: %w", err)
	}
	for {
		var msg struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		if err := websocket.JSON.Receive(ws, &msg); err != nil {
			return fmt.Errorf("waiting for the answer to Network.disable: %w", err)
		}
		if msg.ID != id {
			continue // an event, or the answer to the proxy's own command
		}
		if msg.Error != nil {
			return fmt.Errorf("the inspector refused Network.disable: %s", msg.Error)
		}
		return nil
	}
}
