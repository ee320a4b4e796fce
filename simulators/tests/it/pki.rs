//! Certificates from the deployment's CA, over real TLS.
