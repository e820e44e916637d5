#!/usr/bin/env bash
# Delta Lake jars for local Spark, fetched by Maven (it honours the machine's repository settings, which
# Spark's Ivy resolver of spark.jars.packages does not) into build/spark-jars. Quiet when already there.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/spark-jars
if ! command -v mvn >/dev/null 2>&1; then
  echo "the Spark tests need Maven to fetch the Delta Lake jars: sudo apt-get install -y maven" >&2
  exit 1
fi
mkdir -p "$out"
rm -f "$out"/*.jar
mvn -q -B -Dstyle.color=never -f tools/spark-jars/pom.xml dependency:copy-dependencies -DoutputDirectory="$PWD/$out" -DincludeScope=runtime
ls "$out"/*.jar >/dev/null
