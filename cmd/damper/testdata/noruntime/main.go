// Command noruntime is a main package without damper.
package main

func main() {}
