"""Deploy Sigma rules to Elasticsearch and Kibana, or poll for them where Watcher is not licensed."""
