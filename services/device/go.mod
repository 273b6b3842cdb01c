module github.com/comfortech/platform/services/device

go 1.26

require github.com/comfortech/platform/libs v0.0.0

replace github.com/comfortech/platform/libs => ../../libs
