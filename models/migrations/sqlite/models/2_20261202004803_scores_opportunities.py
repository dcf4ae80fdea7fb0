from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE TABLE IF NOT EXISTS "score_entry" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "rule" VARCHAR(64) NOT NULL,
    "kind" VARCHAR(8) NOT NULL,
    "points" INT NOT NULL,
    "interaction_id" BIGINT,
    "at" TIMESTAMP NOT NULL,
    "prospect_id" INT NOT NULL REFERENCES "prospect" ("id") ON DELETE CASCADE
) /* One ledger row. `points` are as earned: behaviour points decay from `at` when a score is */;
CREATE INDEX IF NOT EXISTS "idx_score_entry_prospec_0ca760" ON "score_entry" ("prospect_id");
        ALTER TABLE "partner" ADD "salesperson_id" INT REFERENCES "salesperson" ("id") ON DELETE SET NULL;
        ALTER TABLE "prospect" ADD "scored_at" TIMESTAMP;
        ALTER TABLE "prospect" ADD "quadrant" VARCHAR(16);
        ALTER TABLE "opportunity" ADD "breakdown" JSON NOT NULL DEFAULT '{}';
        ALTER TABLE "opportunity" ADD "qualified_at" TIMESTAMP;
        ALTER TABLE "opportunity" ADD "attribution" VARCHAR(16);
        ALTER TABLE "opportunity" ADD "touches" JSON NOT NULL DEFAULT '[]';
        ALTER TABLE "opportunity" ADD "accepted_at" TIMESTAMP;
        ALTER TABLE "opportunity" ADD "reached_at" TIMESTAMP;
        ALTER TABLE "opportunity" ADD "qualified_by" BIGINT;
        ALTER TABLE "outbound_message" ADD "history" JSON NOT NULL DEFAULT '[]';
        ALTER TABLE "outbound_message" ADD "salesperson_id" INT REFERENCES "salesperson" ("id") ON DELETE SET NULL;
        ALTER TABLE "outbound_message" ADD "claimed_until" TIMESTAMP;"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "partner" DROP COLUMN "salesperson_id";
        ALTER TABLE "prospect" DROP COLUMN "scored_at";
        ALTER TABLE "prospect" DROP COLUMN "quadrant";
        ALTER TABLE "opportunity" DROP COLUMN "breakdown";
        ALTER TABLE "opportunity" DROP COLUMN "qualified_at";
        ALTER TABLE "opportunity" DROP COLUMN "attribution";
        ALTER TABLE "opportunity" DROP COLUMN "touches";
        ALTER TABLE "opportunity" DROP COLUMN "accepted_at";
        ALTER TABLE "opportunity" DROP COLUMN "reached_at";
        ALTER TABLE "opportunity" DROP COLUMN "qualified_by";
        ALTER TABLE "outbound_message" DROP COLUMN "history";
        ALTER TABLE "outbound_message" DROP COLUMN "salesperson_id";
        ALTER TABLE "outbound_message" DROP COLUMN "claimed_until";
        DROP TABLE IF EXISTS "score_entry";"""


MODELS_STATE = (
    "eJztXWtz27i5/isYfTnOjNa1lTjJejtnRra1G7W25CMru22jHRoiIYljEmBI0Irak/9egP"
    "e7SUmUKQZfYgXAS5APbu8d/+noREGadXoHKTJVqHUuwX86GOqI/UjVdUEHGkZYwwsonGtu"
    "42iruUVNKFNWvoCahViRgizZVA2qEsxKsa1pvJDIrKGKl2GRjdWvNpIoWSK6Qiar+PInK1"
    "axgr4hy/+v8SQtVKQpsddVFd63Uy7RjeGUDTH91WnIe5tLMtFsHYeNjQ1dERy0VjHlpUuE"
    "kck+hz+emjZ/ff523pf6X+S+adjEfcUIjYIW0NZo5HPnUljWkaTReCo9DKaS1KkAkEwwB5"
    "e9quV8/ZK/wk+983cf3n18+/7dR9bEec2g5MN3t+sQGJfQgWc07Xx36iGFbgsH4xBUqlL2"
    "uBSu1ytoZgMbECSwZS+dxNZHsghcvyBEN5xRh4BXh98kDeElXXFMz84KwPy9P7n+1J+csF"
    "ZveJeELQF3bYy8qp5bxxEPEX5in5YN8ADbugPykL0TxDJKge3TNhnrTn8yHV7fDi4BNKnK"
    "EJnhPz4Np4P7/v1gcgnWK5UiAxrInOHr/gNrJkOLtfl9eDMYX4JnVUGEUQyuhqM+b47mKo"
    "bO51UdvfP3JQbv/H3u2PGq+NDZplZlaXjNtxosb09p5ro4P+u9K4Mta5aPrlMZx5fCpZUG"
    "+G8P41HO3uO1TyCsqDIF/w801Upt7/taFp2/LmwscxTB3FY1qmLrlPf3v52aBqAAbo4Pf7"
    "JuWV+1KMgnd/1/JPG/vh1fOZARiy5N5ynOA64SQyGbiEMmQZoekBtWQ1UdZQ9KnDI5NB7p"
    "qf+jOftW+bXAPlAZY23jLdOCoZkO7wYP0/7dfWx8bvrTAa/pOaWbROlJckcKHgL+GE4/Af"
    "5f8K/xaJAcxqDd9F8d/k7QpkTCZC1BJcKl+KU+at85f7V4ijADvGAO5ac1NBUpVhOZHowh"
    "zFiqVx7Zr3+fIA06wKbngMdmXrM/x7cRfvenu18aToIQHT5BdkRnwh5xhGujFDwWOzF3nT"
    "0P/BltAoivOtIjeeswXaX39GQJxHDpfBLvm/fkgXXPODHsCFcpYc+v6hbJekakkRD1DnbO"
    "1CzqOX8rsLN++yYLH9sytL2PZfjZ3sd8dpbXCW5WcLNHtxDaxc3G+AyoIctApsWGrNIJki"
    "Z8+TRpPuu6j/MkJSxkop2G+ldiInWJ/442KQVXDn8Xf9pxIZ3H5LFiE64D/iZjnrEf7PMR"
    "daBgrwFGn29vO9/LiGSGSdizZLojY33vPaY9qMdPAiG4HlDwiK7iDOEjscjzBZDE3iKEkK"
    "M6NLpCCCkjhLwvo1N/n69Rf5/SpxMoEQPhrImbj3CMaC+2i9edwDVjvEYy0SXbQmY1mJN0"
    "AumXkKYI6pUs0177muxvbYJWgaq2kWRoVDjhYjRbyUdbbccXZ40+6UJMGX+iPmecbVeEaA"
    "jibFBDogSic0ZVF6T+TD6soudqPL6NKRKuhtPEjP18dzWYnJw7E5k1Ul2xKA21UO/kz+p2"
    "qXe2MlZ65otdBePQCNISyS+6hIT2oAxKfKbZhiSUCELFcgzG72PEhxgGMSl7ZaruCtM4eN"
    "SmpWDpyLLgcmecbDonNlbu3Ke1CKs6dZtDBWHKp1aGYjOo6xZpNdVoq5dUmp0xRmANN4AS"
    "YCKZLLFqIQCBf3Cfgj4w2OAioFrgCRkUQItVP6ENUoCisklCwcnjM9Rs9NgFC2ICjRB2mF"
    "kOAxfFuL6eZhhiBVgIaqzlWqUrQFcIcN0gp2ZEbhWjYl1bK7IGKgU6tJ6Q8uYXp62hseFl"
    "I6HPkcm7x+iZ/bAoMZFy2ulm6ne/BG7Tzjt1/kwofL8EzA83wvwp9L+H1P+23ht+3JfG94"
    "PR8OYSBJrVGb67D0p1Iyj9PBqOnTL2UsQpGfxjOpiM+rfS54fBhNegbxSZGGqe5nCG7z8x"
    "6erSXZDJlfw6XvLuKssc0+y1EhA0eSCb5FnkbpNpiKdsduR4NAQUbYhGKFJisBUT01+k3I"
    "cCHcbtePSb3zzpUyT0Sz+mfilLJVLNdyhBdTjFeMOZgALPISOiNNrRbaiC/qlpIJd1GkpM"
    "sJjH0HX/4bp/MyhyGKrVz9xHP8vRPDIyBZ7m0VZ1enl86ZA1mx4Ox98FX5gkbbJPkhjsRE"
    "gB7fYCaRgzU7dtVya6AfGmCrwRkvYhXI+v/2HD5hsNcA3uCYib8HSEM1iEfIjjVALnl3Fm"
    "n2Wz/irtFVEagXHp7Viy1H9X2jCSdO3D+m2vBNZve7lY86o41kiHaqWMDQFB+9DtXZSZyq"
    "xVfi6TC5Gwobkhbq44Ay2LyctbqaoyH7AHjVXDVsWRKKh8TF7SUC1UDUmWTMyMw6RIRxWn"
    "O5yW6li8N+doBZ9VYlbGNk0owE2C+9WGigmrcfNRmvadzvu3wjnTb5tzIEYo9v8m7//805"
    "h4Kz0j01Kzwm6LxIkUaftW1f4lCh+2LSyBMUqxrhq9roS99we099qGsuWoxynFqDdl1DMW"
    "e8qFdqGaFnU8+qvZ+VN0IkVImtFPWFXLo5smFPCm4Q1M2OWBjZIISNOQerFiFX1+YkQC1h"
    "c9fpxZmAZYZAnKcviJLtmc/EAZM3gP6LYu4jGJbHzdlsA2PPT3AG+7gtyS2Kb4oxLwRk79"
    "fUzf1sWiJjFOc0k75A/zopF2jrqLxj4dmZhTMuaOg74bRu2bmlnrGK5hhivJNjjd8Qe2ek"
    "LtKe6+1UCJtOoisnwHfFgx4v7k7Nm7HnHhk1qK1atF4R/nyuMmU4mxPebOaD3wRw2w51DZ"
    "FrAOEXTiHn0FkSfB2fhy+ImkB21fjMufrt0weVOxwIKnUeDB63MEeIC8q5q4BI8uR/QI1p"
    "A30hSkAM61g0fLNp/VZ2I+gpP1ClKgk2ekdDsJuGvpZIbXq00XrFcIvzkF0xUC7gN+4nxb"
    "EO0PmJi1sdwQf0p0Bgfvc70iFvJ7dASQR6Dx45m/F12hGfb77AKLAIgBex+gKuxpqqaBBZ"
    "uglhvQ77x8Xuh+ImhHBOUcMiiHsVuZubzznQpCihZGcu/fFdxZhml8891nA4Jm+M/yblvj"
    "Pyts/vnr4Ditv2Vs/v4Bto1tUsR35xnR/LO/4q0bcSqBbIk7NzzIDqstbxrIZdXliQmWHT"
    "lfRtUrwM23RTQuKYFjZssQC33zW7406Nv5xHUTR7VfdgtkmtanG7saj6efLsGcELqa4TvG"
    "Yk2G/dtLoLNXM1WozfBD/3bwcD+YMB74EkQuVpnh+/5kOuJ3dEdcCF4/kEFeQYxRThjny6"
    "MWIW/0wI37PEEczwzHU8LxG9Cvx3f8/nOZ6NsMRJkkB/kpDtIpx2SEK8UrBwT7Qb1BN1vU"
    "EFUAdQMyhqIKvlGa1t1wUU+OjmbdH9IqVdYcUnlVBdyAoHVzd//bg+Wc3FUk6YBA+KKmtR"
    "MiaUEu1IdWujLOk8ltmXl9Cq/JidEd8KacoORor8qhqvyEKgVehxTtOwh7F2XEFdaqIClK"
    "SmCxzUo5Z7zm7QP34rzMScha5YLr1CXjM5aVxBC/ffvgrWXush4X6jJTb18YSx4StQ/o/X"
    "PLX82cGIKC9BchSfsQrmWnWCNNJjqSKPqWcd7lp0pP0rUB7iKLbR0J07nBOMv1u4inC2jE"
    "zYfl2Tn0zVAZf72F10KcUuSjaE6IetpLQfim5B8k7fVN8S4brGQHjNEI5U9GRgLPDlbR5S"
    "dOJYAVgfOHcqUKDbQVvalShALel/2p4vkERHaCEk5VqXkmchTsE9/KOQr8s2oP4N5FHtVO"
    "dBMHewl4XQ5L7A7l8I3xozskJ3CzSYhLynNgF3GuFbCq5Gwawsr24TUxn/IRHWM0Jeyfct"
    "eb98PHtQjXin65Pgg57rkRjIq9dKXI4JSI2FwhoOr83mxAFgAC/oSud5MxP27BwiS6E53I"
    "a3j8IuVRk9zy7t84rBGo8Bb6pdPu/yYAOm8VD9qsp58Z/gNd84aKiZwbkk90Fas/sc1xaU"
    "Id8CuWWQP2ZP5U641T4IRasvdyUAP3o9+6wERs/phIAYQdU7sGYFbPn7hr5sSGeQjW7Lds"
    "EduUMwxGVyqG5iZHAgxokhr1DXXD1I9y48nUqHv+JoFW7/f+5Go46k/+mW3FuMrwT7n653"
    "TQTyo12OtUwtwjEIBXADwlj1eJE4lvQenB8g/lkkx5yZxszdp8yjLjecnYsgN0dgq6cfLs"
    "ZJzqfv6d/OPc9Fu8eIz3wxwFnIghxM5YX6C7BBZigCgW0BG0bH7OzTfOMWghk5+swdm7Qu"
    "woniPIzlx2llpwnc6+UFtPM8zLF7bJ/lgUOEc4sizWC8+ZgpSu+xyelIeTyAxMVmISe7k6"
    "BdcascLO+IuxznjCBZ7RgTWf4SVhrMdXW0W06zRTdURs+gtnRVxaTgRUCzCAnSQNEdEBnD"
    "zqxilv8PimJHfwJXY3bbUrVK/U5Y8S3PRzr/f27Yfe2dv3Hy/effhw8fEs4BbSVUVsw9Xw"
    "N845dKP2qZdZCWKgLS+IihK20JR4JKbDUhZjCyG8zd0vIdlhBvgVjsmWjK9z5GSoIZnEmB"
    "sVENAkBnfBiepasXVdSlUwnDfjz1e3A3A/GVwPH4ae33owfk4lLwodayaD/m2S9ffO4koQ"
    "R4kExi9i7HIh27i1RAkP4rskNqrtNqrX87doGnuxd4eLCK9dHtkElUA2y+eCy1sVvS0iJM"
    "LP4kU/CyNigdvVAaD9qVUSa7ZE3ppXcQE4VniLfAAy4bX8JMm7egC0K9lyEtfonljZ9F9n"
    "RiAX9wztZDAg+erJYOxf1k+Osae6M//HApqKn3hu1FBveAr60fQrrI2n57OAk6SVrpBqAp"
    "l9LbAQk9t+AQi6IfMx3WQtvcywp05cIsoTv7o0ZOE1J2sMFsQEBr8tHC+5apLgrp8U1mBt"
    "MX3kXYTaS/Zr4+gvucrTUWC6iWGBvGJTCJxE3hHM7N75zz3252LRO5vZ7xbni6wy9i3sAN"
    "YQXNroDe/NTZCLlFPw+IQ2jwyDJ2R53xNAFHxKiJGTRdcka5GFtoGWTzaSaVTz4+S85q1L"
    "OrP/IER3mVb21w5pBJ+bFh1EpE4+1O2N1BFKjvYpOVq+UYm4kkPqO4RA3qlVIBdhO4cJ23"
    "kVtd2RIlyktasW/HC4e8+OBOpa7xOKBj1k6IgSMRH5miI10XCvSaS/RLx7FaTYhsQF3z8L"
    "HbK6jtJBuGU10y0rz8O7IMNunn/3ltqO12bB6kxfnJ/3O0eNdAS5vhujSQo3oAoIx4haCP"
    "P5z+clcGat8lMY87o40uz8yLrsIx/lgKANWawOkCP6wGnOfzyADbjhMW1piPPz70ZIDp+C"
    "93XcvGpJtmsiGanPWymnE6Qt1E4fiTa6lM8dY/plZG3nWZmkFc6VDR5oWYNsCBTJxlTN0C"
    "2+5EObIBY5AJs81pBSpBtZqS9yBfQoyeGsS3X5ou/dVHvwkPWGrQ5hq2swsI1znm0YxvvV"
    "wif3hT1AWzKS/EhhzQslf23XzrHBA6cZmnTTyVDeR6u7Rcp7kmgoboA8ps2zW6Rnl0mW83"
    "a+v4PfXnBQKR8SCqmdwZAWaMsCisNpfJ249U5dkNZ8+aWJYKZTQz7EIUX7NJK1XHnCpCRT"
    "ndu+nba0Zj1O1j6w9z+ZKbHlFap291pIIq5f27tGeM42iyeFrDMmfv6QxIiaMSi829YMyl"
    "cbairrTZHmWVeoFDhkJClbJEsfxDkjawyqa9CTtEKt2mS1qsnDw7a0iUUpxSg3eZShLCNj"
    "u7icBKkY5yaPswi/yj9I2xt+JTKhiCiho4G3cYadps3h2rKiiCih+qKEyoSx6MiyeDL8DK"
    "G2QiTL2KZzYmPlzn1ae7CvNagliVqWbSwNbIF9zGss6ZHWJTI2e815jhKebsRPZgzcGw0u"
    "gWKbvAt+OwFDESlgrdIV4BiQxaLLaahzXwFgkxIYtsk4CffugkS+5tr6yYzF8RrwenkFMU"
    "ZaKhRHGPkOaeSLDEhZfX6EpIXRCPsP+vAnegWIIyQthLgO45+sGirCGQxhkf0vQtRGmEVU"
    "QquiEoqcCAbY1lPs+Os7FBiMo1Ddi14qjEDnfjC6GY5+uwQe/Qw/DEbTS4fZmOGbwe3w98"
    "FkcMOYE6Spz/xqphn+tT+85UULqGpISTI6r7MtCU/kPWtZMPpGJQ+iLVSXGeQiaqPBSuo1"
    "YowQlXRrmcX755/sSbqaXE7alONOgxaVkGlWC5qNU7XPs+fivFcCaNYqF2mnLpnLX8Qi/S"
    "g72IqxtsTM8E7JZ5cjJM3wGWqVI5ewe+Zvfe21e3LBYatLnvBB+USxzW65zUaCUKpZX9OE"
    "wvoqjNuva9wW1tfD5GhMRK7tiHMiYK6dOKe3y0bFND7wCLQBpmZmSGOktlt4cQVvJ6GgYa"
    "nrKzSkLJHp3I0AHg3CgX0E/P4EyO9VMDFSLsEcreCzSmwTuA2AgmS4cW+9fYT00b2OFgLn"
    "BYBqpay1dXXkXmIBThSis8H/Cy9mPZ4amzen4N4kC1Vzbn2wAHav1UWx628pvx1jCZ/dGm"
    "eoxDW4R+fSn28iNm2tkn3Yb99Ck9r+9W4i3WJdiSzdra8CsxoSCA/XDCEgsuVnCgGFG3KK"
    "tkVywIEjrrYIzGirxqpNKgzhmi98xxso8ZXyHX8daa+PTFVedTIkPa+mWyTlwbCNSFlzTE"
    "u7WyCqPCPTqpidIkLSQp66d3FRKg/IRUEekIuUWxNbVBUQ9pq3EN3zs7MyLmNnZ/k+Y7wu"
    "mW2RMctZnqz5JuMIifCwrGgcTnEKhzzMvv8Xb4bvGQ=="
)
