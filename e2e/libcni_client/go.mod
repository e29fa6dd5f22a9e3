module weir.dev/e2e/libcni_client

go 1.21

require github.com/containernetworking/cni v1.1.2
