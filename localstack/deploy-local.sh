#!/usr/bin/env bash
# Deploys the dropload CDK app to LocalStack with the compose Postgres instead of RDS.
# Used by `npm run deploy:local`. Needs Docker, LOCALSTACK_AUTH_TOKEN and the aws-cdk-local package (cdklocal).
set -euo pipefail
cd "$(dirname "$0")/.."

export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export AWS_REGION="$AWS_DEFAULT_REGION"
# LocalStack accepts any credentials; fixed dummies keep real ones out of the way.
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
unset AWS_PROFILE AWS_SESSION_TOKEN

# Which Postgres the Lambdas dial. They run as containers LocalStack starts on the `dropload-local`
# network (LAMBDA_DOCKER_NETWORK in docker-compose.yml), so the compose service name resolves and the
# container port is 5432. (5433 is only the host-side mapping, for psql from your machine;
# host.docker.internal would also work on Docker Desktop but needs extra_hosts on Linux.)
DATABASE_URL_LOCAL="${DROPLOAD_LOCAL_DATABASE_URL:-postgres://postgres:postgres@postgres:5432/postgres}"

if ! npx --no-install cdklocal --version >/dev/null 2>&1; then
  echo "cdklocal not found: add the devDependency aws-cdk-local (npm i -D aws-cdk-local)" >&2
  exit 1
fi

docker compose -f localstack/docker-compose.yml up -d --wait

context=(--context database=local --context "databaseUrl=${DATABASE_URL_LOCAL}" --context stackName=Dropload)

npx --no-install cdklocal bootstrap "${context[@]}"
npx --no-install cdklocal deploy "${context[@]}" --require-approval never --outputs-file cdk.out/local-outputs.json "$@"

echo
echo "Deployed. Outputs: cdk.out/local-outputs.json. Drop a file, e.g.:"
echo "  aws --endpoint-url http://localhost:4566 s3 cp samples/data/customers/<file> s3://<BucketName>/incoming/customers/"
