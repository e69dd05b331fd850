// Command gohttp GETs its argument with Go's default client (which honours
// HTTPS_PROXY and SSL_CERT_FILE) and prints the status and the body: the
// local host's egress tests run it inside a container.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
)

func main() {
	resp, err := http.Get(os.Args[1])
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	fmt.Printf("%d %s", resp.StatusCode, b)
}
