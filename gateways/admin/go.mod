module github.com/comfortech/platform/gateways/admin

go 1.26
