from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE TABLE IF NOT EXISTS "material" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "title" VARCHAR(200) NOT NULL,
    "kind" VARCHAR(16) NOT NULL /* ARTICLE: article\nWHITEPAPER: whitepaper\nCASE: case\nVIDEO: video\nWEBINAR: webinar */,
    "url" VARCHAR(1024),
    "tags" JSON NOT NULL,
    "created_at" TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS "partner" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "name" VARCHAR(128) NOT NULL,
    "tags" JSON NOT NULL,
    "created_at" TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS "salesperson" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "name" VARCHAR(64) NOT NULL,
    "oa_openid" VARCHAR(64) UNIQUE,
    "wecom_userid" VARCHAR(64) UNIQUE,
    "team" VARCHAR(64),
    "daily_cap" INT NOT NULL,
    "active" INT NOT NULL,
    "created_at" TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS "idx_salesperson_team_e142d2" ON "salesperson" ("team");
CREATE TABLE IF NOT EXISTS "code" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "kind" VARCHAR(16) NOT NULL /* BOOTH: booth\nMATERIAL: material\nSALESPERSON: salesperson\nPARTNER: partner */,
    "channel" VARCHAR(8) NOT NULL /* OA: oa\nMP: mp\nWECOM: wecom */,
    "scene" VARCHAR(32) NOT NULL UNIQUE,
    "campaign" VARCHAR(128),
    "serial" INT,
    "tags" JSON NOT NULL,
    "permanent" INT NOT NULL,
    "ticket" VARCHAR(256),
    "url" VARCHAR(512),
    "page" VARCHAR(256),
    "config_id" VARCHAR(64),
    "qr_code" VARCHAR(512),
    "welcome_text" TEXT,
    "expires_at" TIMESTAMP,
    "created_at" TIMESTAMP NOT NULL,
    "material_id" INT REFERENCES "material" ("id") ON DELETE SET NULL,
    "partner_id" INT REFERENCES "partner" ("id") ON DELETE SET NULL,
    "salesperson_id" INT REFERENCES "salesperson" ("id") ON DELETE SET NULL
);
CREATE INDEX IF NOT EXISTS "idx_code_campaig_a45641" ON "code" ("campaign");
CREATE TABLE IF NOT EXISTS "prospect" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "name" VARCHAR(64),
    "company" VARCHAR(128),
    "title" VARCHAR(64),
    "department" VARCHAR(64),
    "industry" VARCHAR(64),
    "company_size" VARCHAR(32),
    "tags" JSON NOT NULL,
    "profile_score" INT NOT NULL,
    "behavior_score" INT NOT NULL,
    "consent_version" VARCHAR(32),
    "created_at" TIMESTAMP NOT NULL,
    "updated_at" TIMESTAMP NOT NULL,
    "first_code_id" INT REFERENCES "code" ("id") ON DELETE SET NULL,
    "merged_into_id" INT REFERENCES "prospect" ("id") ON DELETE SET NULL,
    "owner_id" INT REFERENCES "salesperson" ("id") ON DELETE SET NULL,
    "partner_id" INT REFERENCES "partner" ("id") ON DELETE SET NULL
);
CREATE TABLE IF NOT EXISTS "identity" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "kind" VARCHAR(16) NOT NULL /* OA_OPENID: oa_openid\nMP_OPENID: mp_openid\nUNIONID: unionid\nEXTERNAL_USERID: external_userid\nPHONE: phone */,
    "value" VARCHAR(128) NOT NULL,
    "sealed" TEXT,
    "created_at" TIMESTAMP NOT NULL,
    "prospect_id" INT NOT NULL REFERENCES "prospect" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_identity_kind_81d689" UNIQUE ("kind", "value")
) /* One way to recognise a prospect. A phone is kept as a keyed digest (`value`, for lookups) */;
CREATE TABLE IF NOT EXISTS "interaction" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "source" VARCHAR(8) NOT NULL,
    "kind" VARCHAR(64) NOT NULL,
    "dedup_key" VARCHAR(191) NOT NULL,
    "actor" VARCHAR(128),
    "scene" VARCHAR(128),
    "payload" JSON NOT NULL,
    "received_at" TIMESTAMP NOT NULL,
    "processed_at" TIMESTAMP,
    "claimed_until" TIMESTAMP,
    "attempts" INT NOT NULL,
    "code_id" INT REFERENCES "code" ("id") ON DELETE SET NULL,
    "prospect_id" INT REFERENCES "prospect" ("id") ON DELETE SET NULL,
    CONSTRAINT "uid_interaction_source_574830" UNIQUE ("source", "dedup_key")
);
CREATE INDEX IF NOT EXISTS "idx_interaction_process_2b062f" ON "interaction" ("processed_at");
CREATE TABLE IF NOT EXISTS "opportunity" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "score" INT NOT NULL,
    "status" VARCHAR(16) NOT NULL,
    "reason" VARCHAR(256),
    "created_at" TIMESTAMP NOT NULL,
    "prospect_id" INT NOT NULL REFERENCES "prospect" ("id") ON DELETE CASCADE,
    "salesperson_id" INT REFERENCES "salesperson" ("id") ON DELETE SET NULL
);
CREATE TABLE IF NOT EXISTS "outbound_message" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "purpose" VARCHAR(64) NOT NULL,
    "channel" VARCHAR(16) NOT NULL,
    "recipient" VARCHAR(128) NOT NULL,
    "payload" JSON NOT NULL,
    "status" VARCHAR(16) NOT NULL /* PENDING: pending\nSENT: sent\nDELIVERED: delivered\nFAILED: failed */,
    "attempts" INT NOT NULL,
    "next_attempt_at" TIMESTAMP,
    "wechat_msgid" VARCHAR(64),
    "last_error" VARCHAR(512),
    "created_at" TIMESTAMP NOT NULL,
    "sent_at" TIMESTAMP,
    "opportunity_id" INT REFERENCES "opportunity" ("id") ON DELETE SET NULL,
    CONSTRAINT "uid_outbound_me_purpose_2ca89e" UNIQUE ("purpose", "channel")
) /* A message to send through WeChat: durable, retried with backoff, sent once per purpose. */;
CREATE INDEX IF NOT EXISTS "idx_outbound_me_next_at_fa7274" ON "outbound_message" ("next_attempt_at");
CREATE INDEX IF NOT EXISTS "idx_outbound_me_wechat__d0886b" ON "outbound_message" ("wechat_msgid");
CREATE TABLE IF NOT EXISTS "aerich" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "version" VARCHAR(255) NOT NULL,
    "app" VARCHAR(100) NOT NULL,
    "content" JSON NOT NULL
);"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        """


MODELS_STATE = (
    "eJztXW1z2rgW/isaPnVncjsJadKUu7MzJHFb7ibAAG13ttnxCluAJrbs2nIS7t789ysZG7"
    "8bO2BiXH0Kkc7xy6O3o3MeH/3T0g0VafbbW0iRhaHW6oB/WgTqiP1I1B2BFjTNoIYXUDjV"
    "VsJhqalNLahQVj6Dmo1YkYpsxcImxQZhpcTRNF5oKEwQk3lQ5BD8w0EyNeaILpDFKr7/xY"
    "oxUdETsv1/zXt5hpGmRh4Xq/zebrlMl6Zb1iP0oyvI7zaVFUNzdBIIm0u6MMhaGhPKS+eI"
    "IIu9Dr88tRz++PzpvDf132j1pIHI6hFDOiqaQUejodedykFZS5b7g4k8liay3CoBkGIQDi"
    "57VNt9+zl/hH+1T969f3dxev7ugom4j7kuef+8unUAzErRhac/aT279ZDClYSLcQAqxZRd"
    "LoHr1QJa6cCuFWLYsoeOY+sjmQeuXxCgG/SofcCrwydZQ2ROFxzT4+McML92R1efu6M3TO"
    "oXfkuDDYHV2Oh7Ve1VHUc8QPievVo6wBJxdBfkHnsmSBSUANvXrTPWre5o0ru6kToAWhQz"
    "RO7It8+9iTTsDqVRBzwuMEUmNJF1R666YyamQJvJfO1dS4MOeMAqMpiGdNnrd7k4mmIC3d"
    "cr23on5wUa7+Q8s+14VbTpHEsrMzQ88Rc1ljen1HNcnBy33xXBlollo+tWRvGlcG4nAf7P"
    "eNDPmHs8+RjCKlYo+B/QsJ2Y3nc1LFq/zhyicBTB1MEaxcR+y+/3W6uiBsiBm+PDr6zb9g"
    "8tDPKb2+4fcfyvbgaXLmSGTeeWexX3ApexplAsxCGTIU02yDWroVhH6Y0S1Yw3jaf61v9R"
    "n3mr+FhgL6gOiLb0hmlO00x6t9J40r0dRtrnujuReE3bLV3GSt/EZ6T1RcC33uQz4P+CPw"
    "d9Kd6Ma7nJny3+TNChhkyMRxmqISvFL/VRe+b21ew+ZAzwgilU7h+hpcqRmlD3YAZhylC9"
    "9NQ+/j5CGnSBTfYBz8y8Yn8ObyJ89ru7X+p3Ao6a0TaycExW6W09XgIJnLuvxO/N7+RBNW"
    "QrKXGN44Sx7lfl2upmSEiY6k0x1d2/JcwRX77OxuNLDZL2RRF7pH2RbY7wOmGNCGvk4AaC"
    "sEZapmXYJlLolhbJ0LtMg6ySyCASNtsebbYx1BDrTZbtPmvCbgtX59pudkxQ2G/Cfmuc/X"
    "ZexJ10nu1MOk+4kgwoGyYiaR03G+GI0k7cdq/bgSvG+BEphi47NrLKwRzXE0hvQpoiqJcK"
    "ynjyFbmemwStCrG2lBVolljhIjqbF7pdTcdnx7Ve6QJMmX2CH1LWtkvD0BAk6aAGSjFEp0"
    "yrKkj9nrzfPfLlYHAT2YNd9iaxHvvl9lIavTlxOzITwhSlQy12xtm9WuyMxc5Y7Iy3Rscw"
    "TcOi7JEp3halwfpSywaBVaUboaciQjlcKT6Edd1RngMBh6U2eQ9aA4LAI1wCagCLmelzgm"
    "0EIPDnkbegC0zWsAhgG9wjkwJos+p7tEQqUPEc2RS8+fsBag76+wjMDAtohnHvmLY7V4Yx"
    "ru5OdwQSFdgIakzyEdMFoAsE+DacazOlVRXTYre2F8YjwBTo0L5H6i//dmVNjTUvawl9ii"
    "x+e4Ie2A+bGhZS37aOUl0p39fkHPeZWn8J38or+lYaT7IadOXBUOr3rjtg7bW4I7fDdalu"
    "rku/9HsDt4w9lOGWSH9MpFG/eyN/GUsjXoOeKLII1Lxd+R0ZfmaWS2c1AuND93XIV6thld"
    "qm6WNlrVDnhqxTwHM1LyYhnrDekQ5xoNEEklveBoGNmPyo5np/cDPof/LF46FOsXf7Ofdu"
    "4Vb3DRy51MIf09qf06nmRkBiV5wEOonyR2bI4Tn5HS0TlsDW+9+6gZy1a2HFFnxc26PxDs"
    "YwYG+OVm6nq+74qnsttZ6zXQ6V0t989NP4b6GWySHAhaVEBPWQBnielb/XCGrNjJWq4yKK"
    "oZuQLMvAG1JpHsLVUAz3+7VVrQGuILSHOPFZRyTFBMiGOKolcN6MM3sth92v1FwR1hEYF5"
    "6OZRv/t9SEEddrHtan7QJYn7YzseZVgvhdU+I3M9xnWEOyrbAtW7ntclRvfxvmQyFpTNEC"
    "PmDDKo1tUlGAm6BlsMszC0J+QJbtRUSLz9gJVTFpb560hTM1G/rmOlMdU31hq0c1RavXpd"
    "V9jELNnmCkzLBlU5mzdso50RN6L1q46jax7njp0pE1Z+OCXd4oh25SUcCbhNd4ZG9fDtiw"
    "ioA0Can3eXvJgFpEScC6MZzm9sIdxNJiX74dFsZFo2nhIRsJpbEHAP0vNzettB68i0hlcK"
    "VmIhsdtwWwDRb9HcDbLJpvHNuEfVQA3tCqv99A+4FinLSSMkAuQu/3uL1b87LDTOID2+YU"
    "orCvQN8Oo+Z1zVgQhyJOi2DX3rYzBVdqKFav9kXEwQy+KulA7hqcQgXy1+ZsGpBvBAgK0E"
    "FtSo7AT0z0vxwMJp87YGoYdHFHbrsTadTr3nSAn3/5joy7N9J4KI3Gg34HhNKF3JFhdzTp"
    "86Srof3F6xP5lQUkBGVkUt3caiH1WjfcoMs/zeDfZPCPMXhK26vBLU9oqxj6SxqiCP0om3"
    "yUJPsriJRiEqwVdoN6jfI1VBCMgroJ2canVNwvpNO4vA0Vfa/iJ6AvuKgGCsLfl3SjCtpL"
    "JtR7p70gi5m/qcTF3BwaEb09ptFYlxxsHg2KlXtUiicaaDSPntE+K2L1Mansgw/ORPb8DH"
    "DPTorYG0wqE1y3Lh4Dm5ey5nz55sFbSd9ld5zheWqEMZfJFSg1D+jdk5x/WBlxmmyMQyrN"
    "Q7iSmeIRaWwHimSKnlLWu+xvveN6TYB73198oycTM7PvBXS1qOYO6GoH1BL1ZqclSYmCip"
    "o9vx0mKbEIFdV3yJYkzUW1hF9C0Lv2BGsoUlAO2qSigHcjey6Wxl1w6DYzZZL9TDDpdolv"
    "aSZd+MjXLcENnzHbTHRjC/sWJK8VK09kcs0AXrCYSmBVJS8njFhattIooDkJS2OCOyXrfG"
    "/ZhmN5tAKkOqZ8j5bbJeu8xPOfhcbzod0+PX3fPj49vzh79/792cXx2kxKVuXZS5e9T9xk"
    "Ogrv1TaTfYKmK0xaWGvUmSvyQvfgjhkh2VSqdGwPgT5VG9d2MNeUQDii1ECYTz6cFGGFfD"
    "jJZoXwusThE0aK/Z+N8lqhCR7tfdBu9ssc+/kANuFSM2DKXJzNxQmp7J+O8zphgUqINxZS"
    "EH54ke8+ptpA5/2BOOsLxWjYdlpBtv2ilo7r7iUat09rv0kNrWiQNYEqO4TiFM/VhnhcXF"
    "kEXuvc1pBSpJtpLrLMDXpYRaSxSqaxKptiRSRXyY9lvlry9wYCmxNue53c7zXDuHAgKCf1"
    "e3okSGRTKADr5jwK2dGfKv304U+OU/z0sS+Ss/30RkxQfFR7SJPnUZ6fvWRGUJEINJtlQy"
    "F1UgzSHG/ZWmN/Ht8WPyqsVRWkFX9PbCGYyqrJhjjQaJ5HsprPHwSj9SdktIqTqgT38mDg"
    "rd1msG59eBe7wfVBYBmdeQcIC2prWX6gjmyb7fS2TUTl0KnhEPV2dbXmYF8p5y2OWtp+Og"
    "lszp7aE5b1kPTGQ7u7wBN3T7RGRAV0YRnOfAG+IWYF0w5QHYvf4ghYiKHon4vNMTBmsyOu"
    "Q4HBxiVgnRKYjsUsCeSedB05srvC+6RS9TwBXu9n/RHHar+mYyDUIEX3WiGVBjKYKjjoKS"
    "87VsYe6zAyYtXIYaBgE5c8Fi6i1ESYBZOpUUymPMfj5iR7r+KENJlFwSEs1wKtodS/7vU/"
    "dYCnf0fGUn/ScY2NO3It3fS+SiPpmhknSMMPyELqHfnY7d3wohnE3gH2rz8tCfbCjr0sBD"
    "1R2YPoBa7LFHXB9Kox++cRMUOIyro9L5emJ67XuOSLuzdSNWhTGVlWOaJ9VKt5oZdK0vWI"
    "0Es2+s0NvbgnQJZv8pCaYKrWea0KcWdKngWWUBQBoM1HV0WZSltGKMod2VAzpItGKJL9rF"
    "Ycti6ysLJopbjbvZqjPC87DGQEae2QxvhRjm/6BUctb3vEcu0MohgT6KwQE+gshwl0lnBS"
    "sEFVAmFPvIHonhwfF3EAHR9ne4B4XSLNLE31S2f7S0Mqwl9a0l+aMBn2uZg9/x8zLohM"
)
