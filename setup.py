"""One wheel, two import packages: the PI connector and the edge agent.

`pip install .` stays light enough for a Databricks job; heavy, product-specific
dependencies live in extras.
"""

from pathlib import Path

from setuptools import find_namespace_packages, setup

# Floors are the versions `make test` runs (requirements.txt), at major.minor: nothing older is tested, and
# tests/test_dependencies.py fails when a pin moves past a floor's minor. Upper bounds only where a release is
# known to break us: Spark must match the jobs' runtime (DBR 17.3 LTS = Spark 4.0), pandas 3 breaks
# pyspark.pandas, and asyncua / paho-mqtt are entered through private hooks (compat/, checked by test_compat.py).
BASE = [
    "requests>=2.34",
    "urllib3>=2.8",
    "pydantic>=2.14",
    "PyYAML>=6.0",
    "numpy>=2.4",
    "orjson>=3.13",
    "pyarrow>=26.0",  # deltalake 1.6 fails with pyarrow 15 (it declares >=21 for its pyarrow path)
    "deltalake>=1.6",
    # The PI Web API simulator ships with the package (demo source, test fixture, load generator).
    "uvicorn>=0.54",
    "httptools>=0.9",
    "jsonpath-ng>=1.16",  # JSONPath of /batch Parameters (pure Python, no dependencies)
    "tqdm>=4.70",  # progress bar of `osipi-connector run` on a terminal
]

setup(
    name="osipi-connector",
    version="0.1.0",
    description="PI Web API -> Delta Lake connector and OPC-UA/MQTT/Modbus edge agent for Databricks",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",  # numpy, pyarrow, jsonpath-ng and fastapi at the tested versions need 3.11
    package_dir={"": "src"},
    # namespace discovery also lists asset folders (web/static) as packages, so their files ship as package data
    packages=find_namespace_packages("src", include=["osipi_connector*", "iot_connector*"]),
    include_package_data=True,
    package_data={
        "osipi_connector": ["py.typed"],
        # the GUI's assets ship inside the wheel: the DMZ has no internet, so no CDN
        "iot_connector": ["py.typed", "sources/*/sample.yaml"],  # sample configs: the GUI and docs show them
        "iot_connector.web.static": ["*"],
    },
    install_requires=BASE,
    extras_require={
        # gssapi (also imported by the simulator's acceptor) builds from source: Debian/Ubuntu need libkrb5-dev
        "kerberos": ["requests-kerberos>=0.15", "gssapi>=1.12"],
        "spark": ["pyspark>=4.0,<4.1", "delta-spark==4.0.*", "pandas>=2.3,<3", "chispa>=0.12"],
        "databricks": ["databricks-sdk>=0.156"],
        "edge": [
            "asyncua>=2.1,<3",  # 2.x subscription API; private hooks in iot_connector/compat/asyncua.py
            "paho-mqtt>=2.2,<3",  # fast path measured on 2.2; private hook in iot_connector/compat/paho.py
            "pymodbus>=3.16,<4",
            "pyserial>=3.5",
            "databricks-zerobus-ingest-sdk>=1.10",
            "protobuf>=6.33",
            "prometheus-client>=0.26",
            "cryptography>=50.0",
            "fastapi>=0.165",
            # optional tracing (tracing.enabled): spans exported over OTLP/gRPC
            "opentelemetry-sdk>=1.45",
            "opentelemetry-exporter-otlp-proto-grpc>=1.45",
        ],
        "dev": [
            "pytest>=9.2",
            "pytest-timeout>=2.4",
            "pytest-rerunfailures>=16.7",
            "pytest-asyncio>=1.5",
            "hypothesis>=6.170",
            "ruff>=0.17",
            "mypy>=2.4",  # `make test` type-checks src/ ([tool.mypy] in pyproject.toml)
            "grpcio-tools>=1.81",
            "playwright>=1.65",
            "databricks-bundles>=1.22",
            "jsonschema>=4.26",
            "tagreader>=6.3",
            "osisoft.pidevclub.piwebapi>=1.1",  # third-party PI Web API clients the simulator is tested with
            "piwebapiconnect>=0.1",
            "build>=1.6",  # tests/test_dependencies.py reads the package metadata the way pip does
        ],
    },
    entry_points={
        "console_scripts": [
            "osipi-connector=osipi_connector.cli:main",
            "iot-connector=iot_connector.cli:main",
        ],
    },
)
