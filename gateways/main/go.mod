module github.com/comfortech/platform/gateways/main

go 1.26
