module github.com/comfortech/platform/gateways/auth

go 1.26
