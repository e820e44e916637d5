"""One wheel, two import packages: the PI connector and the edge agent.

`pip install .` stays light enough for a Databricks job; heavy, product-specific
dependencies live in extras.
"""

from pathlib import Path

from setuptools import find_namespace_packages, setup

BASE = [
    "requests>=2.31",
    "urllib3>=2",
    "pydantic>=2.6",
    "PyYAML>=6",
    "numpy>=1.26",
    "orjson>=3.10",
    "pyarrow>=14",
    "deltalake>=1.0",
    # The PI Web API simulator ships with the package (demo source, test fixture, load generator).
    "uvicorn>=0.30",
    "httptools>=0.6",
    "jsonpath-ng>=1.16.0",
    "tqdm>=4.66",  # progress bar of `osipi-connector run` on a terminal  # JSONPath of /batch Parameters (pure Python, no dependencies)
]

setup(
    name="osipi-connector",
    version="0.1.0",
    description="PI Web API -> Delta Lake connector and OPC-UA/MQTT/Modbus edge agent for Databricks",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
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
        "kerberos": ["requests-kerberos>=0.15"],
        "spark": ["pyspark>=4.0", "pandas<3", "chispa>=0.10"],
        "databricks": ["databricks-sdk>=0.30"],
        "edge": [
            "asyncua>=1.1",
            "paho-mqtt>=2.0",
            "pymodbus>=3.6",
            "pyserial>=3.5",
            "databricks-zerobus-ingest-sdk>=1.0",
            "protobuf>=5",
            "prometheus-client>=0.20",
            "cryptography>=42",
            "fastapi>=0.110",
            # optional tracing (tracing.enabled): spans exported over OTLP/gRPC
            "opentelemetry-sdk>=1.20",
            "opentelemetry-exporter-otlp-proto-grpc>=1.20",
        ],
        "dev": [
            "pytest>=8",
            "pytest-timeout>=2.3",
            "pytest-asyncio>=0.23",
            "hypothesis>=6.100",
            "ruff>=0.5",
            "grpcio-tools>=1.60",
            "playwright>=1.40",
            "databricks-bundles>=0.260",
            "jsonschema>=4",
            "tagreader>=5",
        ],
    },
    entry_points={
        "console_scripts": [
            "osipi-connector=osipi_connector.cli:main",
            "iot-connector=iot_connector.cli:main",
        ],
    },
)
