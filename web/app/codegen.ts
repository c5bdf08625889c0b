// Types for every operation in src/operations/*.graphql, from the server's schema.graphql.
import type { CodegenConfig } from "@graphql-codegen/cli";

const config: CodegenConfig = {
  schema: "../../schema.graphql",
  documents: ["src/operations/*.graphql"],
  generates: {
    "src/gql/": {
      preset: "client",
      presetConfig: { fragmentMasking: false },
      config: { scalars: { Date: "string", DateTime: "string", Decimal: "string" }, enumsAsTypes: true },
    },
  },
  ignoreNoDocuments: false,
};

export default config;
