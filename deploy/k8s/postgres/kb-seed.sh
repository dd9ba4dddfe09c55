#!/bin/sh
# Seed an empty PostgreSQL knowledge base with the default documents, once.
#
# Run by the one-shot `kb-seed` service of the compose profile "scale" and by the Kubernetes Job
# cogcore-kb-seed, with COGCORE_KB_URL set, in the service's image. It creates or upgrades the
# schema (`cogcore kb migrate`), then builds the default knowledge base only when the database
# holds no document: `cogcore kb build` makes a store exactly the default set, so running it on
# a store in use would delete the documents written through the API since.
set -eu
: "${COGCORE_KB_URL:?COGCORE_KB_URL must name the PostgreSQL knowledge base}"

# The database may still be starting (a first initdb takes a few seconds): retry, bounded.
tries=0
until cogcore kb migrate; do
    tries=$((tries + 1))
    [ "$tries" -lt 30 ] || { echo "kb-seed: the database did not answer" >&2; exit 1; }
    sleep 2
done

documents=$(cogcore kb stats | python -c 'import json, sys; print(json.load(sys.stdin)["documents"])')
if [ "$documents" -gt 0 ]; then
    echo "kb-seed: the knowledge base holds $documents documents: left as it is"
else
    cogcore kb build --source default
fi
